"""The one data converter of every client, worker, test environment and replayer.

Workflows and activities take one pydantic model in and give one out, so fields can be added
later without breaking running histories; pydantic's JSON carries datetimes, decimals, enums
and UUIDs that the default JSON converter would refuse or flatten. Clients, workers and
replayers must agree on it, which is why there is exactly one. (The payload codec that
encrypts personal data will be attached here.)
"""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

DATA_CONVERTER: DataConverter = pydantic_data_converter
