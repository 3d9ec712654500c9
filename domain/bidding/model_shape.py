"""The shape of CoLaNet's input and outputs, shared by feature building and inference."""

FEATURE_DIMS = 256
HIDDEN_UNITS = 64
OFFER_SLOTS = 64
VARIANT_SLOTS = 64
