"""CoLaNet's 256-dim input: who the user is, where the ad would show, and what the offer is.

The vector is three blocks. The user and context blocks are built once per request, the offer
block once per creative when the catalog loads, so a request only stacks rows:

    [  0, 100)  user     interests (64, hashed), segments (32, hashed), loyalty tier (4, one-hot)
    [100, 132)  context  device type, hour and weekday, inventory and imp kind, floor, consent, geo
    [132, 256)  offer    targeted interests (64, hashed like the user's), format, size, IAB category
                         (32, hashed), price level, strategy, identity (17, hashed), and the
                         user x offer interest overlap (last dim)

Hashing uses CRC-32 (stable across processes and runs, unlike ``hash``).
"""

from __future__ import annotations

import math
import zlib
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from domain.bidding.model_shape import FEATURE_DIMS, OFFER_SLOTS, VARIANT_SLOTS
from domain.campaigns import BidStrategy, Campaign, Creative, CreativeFormat
from domain.openrtb import BidRequest, Imp
from domain.profiles import LoyaltyTier, UserProfile

Vector = NDArray[np.float32]

USER_DIMS = 100
CONTEXT_DIMS = 32
OFFER_DIMS = FEATURE_DIMS - USER_DIMS - CONTEXT_DIMS  # 124

_INTEREST_SLOTS = 64
_SEGMENT_SLOTS = 32
_TIERS: tuple[LoyaltyTier | None, ...] = (
    None,
    LoyaltyTier.GREEN,
    LoyaltyTier.GOLD,
    LoyaltyTier.RESERVE,
)
_FORMATS = (
    CreativeFormat.BANNER,
    CreativeFormat.VIDEO,
    CreativeFormat.AUDIO,
    CreativeFormat.NATIVE,
)
_CATEGORY_SLOTS = 32
_IDENTITY_SLOTS = 17
_MAX_FLOOR_USD = 50.0
_MAX_BID = 50.0


def stable_slot(kind: str, value: str, slots: int) -> int:
    return zlib.crc32(f"{kind}:{value}".encode()) % slots


def offer_slot(campaign_id: str) -> int:
    """Which of CoLaNet's offer-head outputs scores this campaign."""
    return stable_slot("offer", campaign_id, OFFER_SLOTS)


def variant_slot(creative_id: str, variant_index: int) -> int:
    """Which of the DCO head's outputs scores this creative variant."""
    return stable_slot("variant", f"{creative_id}#{variant_index}", VARIANT_SLOTS)


def _interest_block(interests: dict[str, float]) -> Vector:
    block = np.zeros(_INTEREST_SLOTS, dtype=np.float32)
    for name, affinity in interests.items():
        slot = stable_slot("interest", name, _INTEREST_SLOTS)
        block[slot] = max(block[slot], min(max(affinity, 0.0), 1.0))
    return block


class UserFeatures(NamedTuple):
    """What the bid path needs of a profile, computed once when it enters the cache.

    Deliberately small and flat, and a tuple of strings, numbers and numpy arrays: caches hold
    hundreds of thousands of these, and a cache keeps them as plain tuples (``tuple(features)``,
    back with ``UserFeatures._make``), which the garbage collector stops tracking once its
    passes have seen them. Every tracked object it walks lengthens its pauses on the bid path.
    """

    known: bool  # False: no profile (or none we may use)
    tier_index: int  # into _TIERS; enum members are objects the collector tracks
    segments: tuple[str, ...]
    interest_names: tuple[str, ...]
    vector: Vector  # (USER_DIMS,)
    interests: Vector  # (64,), the interest part alone, for overlap with offers
    interest_mass: float  # its sum, which every bid divides the overlap by

    @property
    def tier(self) -> LoyaltyTier | None:
        return _TIERS[self.tier_index]

    @classmethod
    def of(cls, profile: UserProfile | None) -> UserFeatures:
        vector = np.zeros(USER_DIMS, dtype=np.float32)
        tier = None
        if profile is not None:
            vector[:_INTEREST_SLOTS] = _interest_block(profile.interests)
            for segment in profile.segments:
                vector[_INTEREST_SLOTS + stable_slot("segment", segment, _SEGMENT_SLOTS)] = 1.0
            tier = profile.loyalty_tier
        tier_index = _TIERS.index(tier)
        vector[_INTEREST_SLOTS + _SEGMENT_SLOTS + tier_index] = 1.0
        vector.flags.writeable = False
        return cls(
            known=profile is not None,
            tier_index=tier_index,
            segments=tuple(profile.segments) if profile is not None else (),
            interest_names=tuple(profile.interests) if profile is not None else (),
            vector=vector,
            interests=vector[:_INTEREST_SLOTS],
            interest_mass=float(vector[:_INTEREST_SLOTS].sum()),
        )


ANONYMOUS = UserFeatures.of(None)


ContextInputs = tuple[int, int | None, int, int, tuple[bool, ...], float, bool, bool, str | None]


def context_inputs(request: BidRequest, imp: Imp, floor_usd: float, now: datetime) -> ContextInputs:
    """Everything ``context_vector_of`` reads, as a key: contexts repeat (same placement,
    device type and minute), so the pipeline builds each vector once. ``now`` is aware UTC,
    as the Clock port gives it; the local time is worked out from the device's utcoffset."""
    device = request.device
    geo = device.geo if device is not None else None
    if request.site is not None:
        inventory = 0
    elif request.app is not None:
        inventory = 1
    elif request.dooh is not None:
        inventory = 2
    else:
        inventory = 3
    return (
        device.devicetype or 0 if device is not None else 0,
        geo.utcoffset if geo is not None else None,
        int(now.timestamp()) // 60,
        inventory,
        tuple(kind is not None for kind in (imp.banner, imp.video, imp.audio, imp.native)),
        floor_usd,
        bool(request.buyer_user_id()),
        request.personal_data_allowed(),
        geo.country if geo is not None else None,
    )


def context_vector_of(inputs: ContextInputs) -> Vector:
    devicetype, utcoffset, minute, inventory, kinds, floor_usd, known, personal, country = inputs
    vector = np.zeros(CONTEXT_DIMS, dtype=np.float32)
    vector[min(devicetype, 8)] = 1.0
    local = datetime.fromtimestamp(minute * 60, UTC) + timedelta(minutes=utcoffset or 0)
    angle = 2 * math.pi * (local.hour + local.minute / 60) / 24
    vector[9] = (math.sin(angle) + 1) / 2
    vector[10] = (math.cos(angle) + 1) / 2
    vector[11 + local.weekday()] = 1.0
    if inventory < 3:
        vector[18 + inventory] = 1.0
    for index, present in enumerate(kinds):
        if present:
            vector[21 + index] = 1.0
    vector[25] = math.log1p(min(floor_usd, _MAX_FLOOR_USD)) / math.log1p(_MAX_FLOOR_USD)
    vector[26] = 1.0 if known else 0.0
    vector[27] = 1.0 if personal else 0.0
    if country:
        vector[28 + stable_slot("country", country, 4)] = 1.0
    vector.flags.writeable = False  # shared by every request in this context
    return vector


def _size_bucket(creative: Creative) -> int:
    if creative.w is None or creative.h is None:
        return 3
    area = creative.w * creative.h
    if area < 20_000:
        return 0
    if area < 80_000:
        return 1
    return 2


def offer_vector(campaign: Campaign, creative: Creative) -> Vector:
    """The offer block for one campaign x creative; the overlap slot is filled per request."""
    vector = np.zeros(OFFER_DIMS, dtype=np.float32)
    vector[:_INTEREST_SLOTS] = _interest_block(dict.fromkeys(campaign.targeting.interests, 1.0))
    vector[64 + _FORMATS.index(creative.format)] = 1.0
    vector[68 + _size_bucket(creative)] = 1.0
    for category in creative.cat:
        vector[72 + stable_slot("category", category, _CATEGORY_SLOTS)] = 1.0
    vector[104] = math.log1p(min(float(campaign.max_bid), _MAX_BID)) / math.log1p(_MAX_BID)
    vector[105] = 1.0 if campaign.bid_strategy is BidStrategy.SCORE_SCALED else 0.0
    vector[106 + stable_slot("identity", campaign.id, _IDENTITY_SLOTS)] = 1.0
    return vector


# The last dim: how much of the user's interest mass the offer targets, written per request.
OVERLAP = FEATURE_DIMS - 1


def feature_rows(
    user: UserFeatures, context: Vector, offers: NDArray[np.float32], out: NDArray[np.float32]
) -> None:
    """Fill ``out`` (n, 256) with one row per offer block in ``offers`` (n, OFFER_DIMS)."""
    out[:, :USER_DIMS] = user.vector
    out[:, USER_DIMS : USER_DIMS + CONTEXT_DIMS] = context
    out[:, USER_DIMS + CONTEXT_DIMS :] = offers
    if user.interest_mass > 0:
        out[:, OVERLAP] = (offers[:, :_INTEREST_SLOTS] @ user.interests) / user.interest_mass
