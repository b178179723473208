"""The conformance suite against the core's reference numpy backend."""

from unified_prompt.testing.conformance import BackendConformance


class TestFakeBackend(BackendConformance):
    backend_name = "fake"

    @classmethod
    def model_ref(cls) -> str:
        return "fake-tiny"
