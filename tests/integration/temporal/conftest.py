from tests.support.temporal import local_env, time_skipping_env  # noqa: F401
