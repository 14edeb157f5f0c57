"""The service directory: an Open Referral (HSDS) import onto the directory topic.

:mod:`.importer` reads, checks, maps and reports an import; :mod:`.plan` compares it
with the topic's current records; :mod:`.kafka` reads the topic back and writes
the changes in one transaction.
"""

from deploy.directory.importer import DEFAULT_MAPPING, ImportOptions, run_import
from deploy.directory.kafka import read_directory

__all__ = ["DEFAULT_MAPPING", "ImportOptions", "read_directory", "run_import"]
