"""The images run the versions the project pins: pyproject.toml and jvm/pom.xml are the truth.

A Spark image one minor away from pyspark, or an Airflow image that is not the pinned Airflow,
builds fine and fails at run time; these checks fail first.
"""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from deployment import ROOT, base_images, dockerfile_instructions

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
POM = ElementTree.parse(ROOT / "jvm" / "pom.xml").getroot()
MAVEN = "{http://maven.apache.org/POM/4.0.0}"
# The oldest kafka-python that speaks to each broker major (Kafka 4 removed the old protocol
# versions, KIP-896; kafka-python 2.1 is the first release that negotiates around that).
KAFKA_PYTHON_FOR_BROKER = {3: (2, 0), 4: (2, 1)}


def pinned(package: str) -> str:
    """The version pyproject.toml pins `package` to (`name==version`)."""
    for requirement in PYPROJECT["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    pytest.fail(f"pyproject.toml does not pin {package}")


def pom_property(name: str) -> str:
    element = POM.find(f"{MAVEN}properties/{MAVEN}{name}")
    assert element is not None and element.text, f"jvm/pom.xml has no <{name}> property"
    return element.text.strip()


def python_minor() -> str:
    """The one Python minor requires-python allows (">=3.11,<3.12" -> "3.11")."""
    match = re.fullmatch(r">=\s*(3\.\d+)\s*,\s*<\s*3\.(\d+)", PYPROJECT["project"]["requires-python"].strip())
    assert match and int(match.group(2)) == int(match.group(1).split(".")[1]) + 1, \
        "requires-python should allow exactly one Python minor"
    return match.group(1)


def image_of(dockerfile: str, repository: str) -> str:
    """The tag of `repository` among the FROM images of docker/<dockerfile>/Dockerfile."""
    path = ROOT / "docker" / dockerfile / "Dockerfile"
    tags = [image.split(":", 1)[1] for image in base_images(path) if image.split(":")[0] == repository]
    assert tags, f"{path.relative_to(ROOT)} is not built FROM {repository}"
    return tags[-1]


def apt_packages(dockerfile: str) -> list[str]:
    """Packages the final stage of docker/<dockerfile>/Dockerfile installs with apt-get."""
    instructions = dockerfile_instructions(ROOT / "docker" / dockerfile / "Dockerfile")
    last_from = max(i for i, instruction in enumerate(instructions) if instruction.keyword == "FROM")
    packages = []
    for instruction in instructions[last_from:]:
        for command in re.findall(r"apt-get install ([^&;]+)", instruction.arguments):
            packages.extend(word for word in command.split() if not word.startswith("-"))
    return packages


def spark_tag() -> dict[str, str]:
    tag = image_of("spark", "apache/spark")
    match = re.fullmatch(r"(?P<spark>[\d.]+)-scala(?P<scala>[\d.]+)-java(?P<java>\d+)-python3-ubuntu", tag)
    assert match, f"apache/spark:{tag} is not an official <spark>-scala<x>-java<y>-python3-ubuntu tag"
    return match.groupdict()


def test_spark_image_is_the_pinned_pyspark_version():
    assert spark_tag()["spark"] == pinned("pyspark") == pom_property("spark.version")


def test_spark_image_is_built_for_the_scala_of_the_jars():
    assert spark_tag()["scala"] == pom_property("scala.binary.version")


def test_spark_driver_and_executors_run_one_java_major():
    # The driver runs in the Airflow image with its own JRE; the executors in the Spark image.
    java = spark_tag()["java"]
    assert f"openjdk-{java}-jre-headless" in apt_packages("airflow"), \
        f"the Spark image runs Java {java}; install openjdk-{java}-jre-headless in the Airflow image"


def test_airflow_image_is_the_pinned_airflow_on_the_project_python():
    tag = image_of("airflow", "apache/airflow")
    assert tag == f"{pinned('apache-airflow')}-python{python_minor()}"


def test_generators_image_runs_the_project_python():
    tag = image_of("datagen", "python")
    assert tag.startswith(f"{python_minor()}-"), f"python:{tag} is not Python {python_minor()} (requires-python)"


def test_spark_python_workers_run_the_driver_python():
    # PySpark refuses Python workers of another minor than the driver's.
    python = f"python{python_minor()}"
    assert python in apt_packages("spark"), f"install {python} in the Spark image for the Python workers"
    for dockerfile in ("spark", "airflow"):
        env = " ".join(i.arguments for i in dockerfile_instructions(ROOT / "docker" / dockerfile / "Dockerfile")
                       if i.keyword == "ENV")
        assert f"PYSPARK_PYTHON={python}" in env, f"docker/{dockerfile}/Dockerfile: set PYSPARK_PYTHON={python}"


def test_kafka_broker_image_is_the_pom_broker_version(services):
    image = services["kafka"]["image"]
    assert image == f"apache/kafka:{pom_property('kafka.version')}"


def test_kafka_python_client_speaks_to_the_broker_major():
    broker_major = int(pom_property("kafka.version").split(".")[0])
    client = tuple(int(part) for part in pinned("kafka-python").split(".")[:2])
    assert broker_major in KAFKA_PYTHON_FOR_BROKER, f"no known kafka-python floor for Kafka {broker_major}"
    assert client >= KAFKA_PYTHON_FOR_BROKER[broker_major], \
        f"kafka-python {pinned('kafka-python')} predates Kafka {broker_major} support"


def test_databases_are_the_documented_majors(services):
    assert services["postgresql"]["image"] == "postgres:17"
    assert services["mysql"]["image"] == "mysql:8.4"


def test_every_image_has_an_explicit_tag(services):
    images = [(f"docker-compose.yml: {name}", s["image"]) for name, s in services.items() if "build" not in s]
    images += [(str(path.relative_to(ROOT)), image) for path in sorted((ROOT / "docker").glob("*/Dockerfile"))
               for image in base_images(path)]
    for where, image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{where}: {image} has no fixed tag"


def test_built_images_are_named_for_their_versions(services):
    # The tag compose gives a built image says which pinned version it carries.
    expected = {"docker/spark/Dockerfile": pinned("pyspark"), "docker/airflow/Dockerfile": pinned("apache-airflow"),
                "docker/datagen/Dockerfile": PYPROJECT["project"]["version"]}
    for name, service in services.items():
        if "build" in service:
            dockerfile = service["build"]["dockerfile"]
            assert service["image"].endswith(f":{expected[dockerfile]}"), f"{name}: {service['image']}"


def test_pom_is_where_the_images_get_their_jars():
    # The images resolve the jars with the command `make up` uses; never by URL.
    for dockerfile in ("spark", "airflow"):
        text = (ROOT / "docker" / dockerfile / "Dockerfile").read_text()
        assert "-f jvm/pom.xml -P spark dependency:copy-dependencies" in text
        assert not re.search(r"https?://\S+\.jar", text), f"docker/{dockerfile}/Dockerfile downloads a jar by URL"
        assert Path(ROOT / "jvm" / "pom.xml").exists()


def install_setting(name: str) -> str:
    """A `NAME=value` setting at the top of local/install.sh (the native install)."""
    match = re.search(rf"^{name}=(\S+)", (ROOT / "local" / "install.sh").read_text(), re.MULTILINE)
    assert match, f"local/install.sh has no {name}= setting"
    return match.group(1)


def test_native_install_brings_the_java_and_python_of_the_images():
    # A native driver on another Java or Python than the images' would pass here and differ there.
    assert install_setting("JAVA_MAJOR") == spark_tag()["java"]
    assert install_setting("PYTHON_MINOR") == python_minor()
