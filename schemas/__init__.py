"""What travels: the events of the wire contract v1, their codes and topics.

The wire contract only, importing nothing else of refnet: :mod:`schemas.events`
(the event models), :mod:`schemas.privacy` (what of a patient an offer
discloses), :mod:`schemas.codes` (code systems), :mod:`schemas.instruments`
(LOINC codes of the screening instruments), :mod:`schemas.topics` (topic
names), :mod:`schemas.decode` (reading a message off a topic),
:mod:`schemas.jsonschema` (the published JSON Schemas) and
:mod:`schemas.errors` (the root of refnet's errors). Import names from their
modules; docs/contract.md is the contract.
"""
