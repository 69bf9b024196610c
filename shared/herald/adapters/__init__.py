"""AWS adapters: each implements one of the domain's ports with a boto3 client it is handed."""
