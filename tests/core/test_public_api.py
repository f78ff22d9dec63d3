"""The public surface is deliberate: this test pins it, so a change to it is a visible decision."""

import subprocess
import sys

import optical_memory

PUBLIC = {
    "AddResult",
    "CheckpointError",
    "ConfigError",
    "Context",
    "EmbeddingInputs",
    "EncoderConfig",
    "InputError",
    "MemoryConfig",
    "MemoryTools",
    "MissingDependencyError",
    "OpticalMemory",
    "OpticalMemoryError",
    "PageInfo",
    "PageNotFoundError",
    "Provider",
    "ProviderError",
    "Reading",
    "RecallError",
    "RenderedPage",
    "Rung",
    "SearchHit",
    "StoreError",
    "ToolResult",
    "Turn",
    "TurnImage",
    "TurnSpan",
    "Usage",
    "__version__",
    "contact_sheet",
    "get_provider",
    "load_conversation",
}


def test_all_is_pinned_and_importable():
    assert set(optical_memory.__all__) == PUBLIC
    for name in optical_memory.__all__:
        assert getattr(optical_memory, name) is not None


def test_importing_the_package_does_not_import_torch_or_ocr():
    code = (
        "import sys, optical_memory; "
        "print(sorted(m for m in ('torch', 'transformers', 'rapidocr', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
