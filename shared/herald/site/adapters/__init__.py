"""The site's AWS adapters: the site bucket and the release marker in the content table."""
