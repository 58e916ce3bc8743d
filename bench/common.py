"""Share set-up between benchmarks: an isolated site, photos, figures."""

import io
import json
import os
import statistics
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SOURCE_PHOTOS = ROOT / "tests" / "photos"
RESULTS = ROOT / "bench" / "results"


def isolated_site(name: str) -> Path:
    """Point the settings at a fresh data folder and set Django up."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"photosite-bench-{name}-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "photosite.settings",
            "DATA_DIR": str(data_dir),
            "DEBUG": "false",
            "SECRET_KEY": "benchmark-only-secret-key",
            "ALLOWED_HOSTS": "127.0.0.1,testserver",
            "SECURE_SSL_REDIRECT": "false",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "AWS_XRAY_SDK_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    return data_dir


def twelve_megapixel_jpegs(count: int) -> list[bytes]:
    """Upscale the test photos to 4000x3000 JPEGs, each one different."""
    sources = sorted(SOURCE_PHOTOS.glob("*.jpg"))
    # Sensor-like noise makes the files as large as a camera's (3-5 MB).
    grain = Image.merge("RGB", [Image.effect_noise((4000, 3000), 24)] * 3)
    bases = [
        Image.blend(Image.open(path).convert("RGB").resize((4000, 3000)), grain, 0.15)
        for path in sources
    ]
    photos = []
    for number in range(count):
        image = bases[number % len(bases)].copy()
        # A changed corner gives each file its own hash.
        image.paste((number % 256, number // 256 % 256, 255), (0, 0, 16, 16))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def peak_rss_mb(pid: int) -> float:
    """Return a process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(share * (len(ordered) - 1)))
    return ordered[index]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(seconds, 0.5) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "mean_ms": round(statistics.mean(seconds) * 1000, 1),
    }


def report(name: str, figures: dict[str, object]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"== {name}")
    print(json.dumps(figures, indent=2))
