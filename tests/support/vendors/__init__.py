"""Local stand-ins for SendGrid, Twilio, FCM, APNs and a webhook receiver.

Each speaks the vendor's documented API closely enough that the real adapters in
``adapters.channels`` run against it unchanged (only the base URL differs), records the exact
requests it received, and can be told to fail the next calls. See ``base`` for the common
parts and ``process`` for running one in a subprocess.
"""

from tests.support.vendors.apns import ApnsStandIn
from tests.support.vendors.base import Fault, RecordedRequest, Reply, ServerThread, StandIn
from tests.support.vendors.fcm import FcmStandIn
from tests.support.vendors.process import RemoteStandIn, StandInProcess
from tests.support.vendors.sendgrid import SendGridStandIn
from tests.support.vendors.twilio import TwilioStandIn
from tests.support.vendors.webhook import WebhookReceiver

STAND_INS: dict[str, type[StandIn]] = {
    "sendgrid": SendGridStandIn,
    "twilio": TwilioStandIn,
    "fcm": FcmStandIn,
    "apns": ApnsStandIn,
    "webhook": WebhookReceiver,
}

__all__ = [
    "STAND_INS",
    "ApnsStandIn",
    "Fault",
    "FcmStandIn",
    "RecordedRequest",
    "RemoteStandIn",
    "Reply",
    "SendGridStandIn",
    "ServerThread",
    "StandIn",
    "StandInProcess",
    "TwilioStandIn",
    "WebhookReceiver",
]
