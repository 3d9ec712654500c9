"""Win, billing and loss notices: verify, settle in the ledger once, record the event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.analytics import AnalyticsEvent, EventSink, EventType
from domain.bidding.ledger import NOTICE_MAX_AGE
from domain.bidding.notices import NoticeError, NoticeSigner
from domain.bidding.ports import Clock, DeliveryLedger, IdSource, NoticeKind
from domain.money import impression_micros_to_cpm

_EVENT_TYPES = {
    NoticeKind.WIN: EventType.WIN,
    NoticeKind.BILLING: EventType.BILLING,
    NoticeKind.LOSS: EventType.LOSS,
}


@dataclass(frozen=True, slots=True)
class NoticeReceipt:
    kind: str
    bid_id: str
    duplicate: bool
    spend_recorded_micros: int
    over_budget: bool = False  # see NoticeOutcome


class NoticeDesk:
    def __init__(
        self,
        *,
        signer: NoticeSigner,
        ledger: DeliveryLedger,
        events: EventSink,
        clock: Clock,
        new_id: IdSource,
        node_id: str = "",
    ) -> None:
        self._signer = signer
        self._ledger = ledger
        self._events = events
        self._clock = clock
        self._new_id = new_id
        self._node_id = node_id

    async def receive(self, kind: str, params: Mapping[str, str]) -> NoticeReceipt:
        """Raises NoticeError for a forged, malformed or expired notice, DependencyUnavailable
        if the ledger cannot be reached (the exchange may retry; nothing was booked)."""
        notice = self._signer.verify(kind, params)
        age = self._clock.now() - notice.bid_time
        if age > NOTICE_MAX_AGE:
            # Past this the ledger may have forgotten the notice: a replay would book twice.
            raise NoticeError(
                "expired_notice",
                f"the bid is {age} old; notices are accepted for {NOTICE_MAX_AGE}",
                expired=True,
            )
        outcome = await self._ledger.settle(notice)
        if outcome.first_of_its_kind:
            clearing = notice.clearing_price_micros
            self._events.emit(
                AnalyticsEvent(
                    event_id=self._new_id(),
                    timestamp=self._clock.now(),
                    event_type=_EVENT_TYPES[kind],
                    campaign_id=notice.campaign_id,
                    bid_price=impression_micros_to_cpm(clearing) if clearing is not None else 0.0,
                    win=kind != NoticeKind.LOSS,
                    metadata={
                        "bid_id": notice.bid_id,
                        "bid_price_micros": notice.bid_price_micros,
                        "spend_recorded_micros": outcome.spend_recorded_micros,
                        **({"over_budget": True} if outcome.over_budget else {}),
                        **(
                            {"loss_reason": notice.loss_reason}
                            if notice.loss_reason is not None
                            else {}
                        ),
                    },
                    node_id=self._node_id,
                )
            )
        return NoticeReceipt(
            kind=kind,
            bid_id=notice.bid_id,
            duplicate=not outcome.first_of_its_kind,
            spend_recorded_micros=outcome.spend_recorded_micros,
            over_budget=outcome.over_budget,
        )
