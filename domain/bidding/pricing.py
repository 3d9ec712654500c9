"""From a CoLaNet score to a price: loyalty boost, bid strategy and budget pacing."""

from __future__ import annotations

from datetime import datetime

from domain.profiles import LoyaltyTier

LOYALTY_BOOST: dict[LoyaltyTier | None, float] = {
    None: 1.0,
    LoyaltyTier.GREEN: 1.0,
    LoyaltyTier.GOLD: 1.15,
    LoyaltyTier.RESERVE: 1.3,
}

# Even pacing would leave a campaign idle at 00:01 UTC; an hour's worth of slack lets it start.
_PACING_SLACK = 1 / 24


def loyalty_boost(tier: LoyaltyTier | None) -> float:
    """What a customer's tier multiplies their CoLaNet score by."""
    return LOYALTY_BOOST[tier]


def offered_cpm(fixed_cpm: bool, max_bid: float, boosted_score: float) -> float:
    """What a candidate offers (CPM, campaign currency), never above its ``max_bid``.

    ``fixed_cpm`` campaigns offer their ``max_bid``; ``score_scaled`` ones scale it by the
    boosted score, so weak matches bid low and fall under floors.
    """
    return max_bid if fixed_cpm else max_bid * min(boosted_score, 1.0)


def day_fraction(now: datetime) -> float:
    """How much of the UTC day has passed, in [0, 1)."""
    return (now.hour * 3600 + now.minute * 60 + now.second) / 86_400


def pacing_participation(spent_today: int, daily_budget: int | None, elapsed: float) -> float:
    """Probability of bidding at all, so a daily budget lasts the whole day.

    Spend at or under the even-pacing line (plus an hour's slack) bids every time; above it the
    chance falls linearly to zero when the day's budget is gone. The ledger still holds the
    hard limit: pacing only spreads the spend out.
    """
    if daily_budget is None or daily_budget <= 0:
        return 1.0
    if spent_today >= daily_budget:
        return 0.0
    allowed = daily_budget * min(1.0, elapsed + _PACING_SLACK)
    if spent_today <= allowed:
        return 1.0
    return (daily_budget - spent_today) / (daily_budget - allowed)
