"""Request and response models of the REST API, in families: Base, Create, Update, Public."""
