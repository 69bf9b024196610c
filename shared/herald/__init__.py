"""Herald: publishing backend for community channels.

``herald.domain`` holds the rules (pure: no boto3, no environment, no clock it is not handed),
``herald.enrichment`` turns text into facts, ``herald.adapters`` talk to AWS, and
``herald.runtime`` builds what a Lambda function needs from its environment.
"""

__version__ = "0.1.0"
