"""The API's own AWS adapters: the paged posts feed."""
