"""Machine translation's adapters: Amazon Translate, and the content table's variant items."""
