"""The MLLP listener: hospitals send HL7 v2 ADT, the network answers each with an ACK
and publishes ``encounter.notified`` on the facility's submissions topic.
"""
