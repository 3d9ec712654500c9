"""The platform's search attributes."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.common import SearchAttributeIndexedValueType

from temporal import search_attributes


def test_every_attribute_is_a_keyword_with_a_distinct_name() -> None:
    names = [key.name for key in search_attributes.ALL]

    assert names == ["TenantId", "CampaignId", "CampaignStatus", "CustomerId", "JourneyId"]
    assert {key.indexed_value_type for key in search_attributes.ALL} == {
        SearchAttributeIndexedValueType.KEYWORD
    }


def test_kind_names_are_spelled_as_the_cli_takes_them() -> None:
    assert search_attributes.kind_name(IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD) == "Keyword"
    assert (
        search_attributes.kind_name(IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST)
        == "KeywordList"
    )
