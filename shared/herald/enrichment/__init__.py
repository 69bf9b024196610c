"""Enrichment: from a post's text to titles, links, hashtags, countries, language and topics."""
