"""The content table as the features that follow it read it: its stream as typed changes."""
