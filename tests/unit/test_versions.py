"""The Python and JVM halves of Spark agree on one version (no servers needed).

pyspark-client installs into the same `pyspark/` package as pyspark; when their versions
differ it silently replaces pyspark's Python files, and the Python side then no longer
matches the jars it drives. These tests catch that, and a jvm/pom.xml that drifted away
from the installed pyspark (its Kafka connector must match Spark exactly).
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pyspark

from runner import config

POM = config.ROOT / "jvm" / "pom.xml"
MAVEN = "{http://maven.apache.org/POM/4.0.0}"


def spark_jars_version() -> str:
    """The version in the name of the spark-core jar that pyspark ships."""
    jars = Path(pyspark.__file__).parent / "jars"
    found = {m.group(1) for jar in jars.glob("spark-core_*.jar")
             if (m := re.fullmatch(r"spark-core_2\.\d+-(.+)\.jar", jar.name))}
    assert len(found) == 1, f"expected one spark-core jar in {jars}, found {sorted(found) or 'none'}"
    return found.pop()


def pom_spark_version() -> str:
    """`<spark.version>` declared in jvm/pom.xml."""
    element = ElementTree.parse(POM).getroot().find(f"{MAVEN}properties/{MAVEN}spark.version")
    assert element is not None and element.text, f"{POM}: no <spark.version> property"
    return element.text.strip()


def test_pyspark_python_files_match_its_jars():
    assert pyspark.__version__ == spark_jars_version()


def test_pyspark_matches_the_installed_distribution():
    # pyspark/version.py is one of the files pyspark-client overwrites.
    assert pyspark.__version__ == importlib.metadata.version("pyspark")


def test_pyspark_client_matches_pyspark():
    assert importlib.metadata.version("pyspark-client") == pyspark.__version__


def test_pom_declares_the_installed_spark_version():
    assert pom_spark_version() == pyspark.__version__


def test_pandas_is_below_3():
    pandas_version = importlib.metadata.version("pandas")
    major = int(pandas_version.split(".")[0])
    assert major < 3, f"pandas {pandas_version} is installed; pyspark supports pandas < 3 only"



def test_build_backend_reads_the_spdx_license_expression():
    # An SPDX string in `license` (PEP 639) is an error before setuptools 77.
    project = tomllib.loads((config.ROOT / "pyproject.toml").read_text())
    floors = [re.fullmatch(r"setuptools\s*>=\s*(\d+)(?:\.\d+)*", requirement.strip())
              for requirement in project["build-system"]["requires"]]
    floor = next((int(m.group(1)) for m in floors if m), None)
    assert floor is not None and floor >= 77, \
        'pyproject.toml: [build-system] needs setuptools>=77 for license = "Apache-2.0"'
    assert (config.ROOT / "LICENSE").is_file(), "pyproject.toml names Apache-2.0, but there is no LICENSE file"
