"""The record sink: persists every record of the entry topics into the store, once in effect."""
