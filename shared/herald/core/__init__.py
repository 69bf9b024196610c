"""What every feature stands on: errors, the lazy holders, AWS clients and their errors, the DynamoDB
table base, observability. Imports no feature."""
