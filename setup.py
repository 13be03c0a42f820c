"""Package layout: metadata lives in pyproject.toml; this file maps ``drivers/`` to
``ccbs_isdn.drivers`` (the design card keeps drivers at the top level of the tree,
installed as a subpackage so ``import ccbs_isdn.drivers.capi20`` works everywhere)."""

from setuptools import find_packages, setup

driver_packages = ["ccbs_isdn.drivers"] + [
    "ccbs_isdn.drivers." + name for name in find_packages("drivers")
]

setup(
    packages=find_packages(include=["ccbs_isdn", "ccbs_isdn.*"]) + driver_packages,
    package_dir={"ccbs_isdn.drivers": "drivers"},
)
