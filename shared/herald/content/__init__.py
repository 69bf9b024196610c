"""What several features read: the post and community models, their bounds, the content table's keys."""
