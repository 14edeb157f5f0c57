"""HL7 v2: pure mappings of ADT messages to the contract's events, and ACKs (python-hl7).

No I/O here: the MLLP listener (:mod:`connectors.mllp`) reads and writes the bytes.
"""
