"""The lab owns its part of the inventory (issue 22): its own schema beside the product's, its own parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dagcheck import paths
from dagcheck.errors import InventoryError
from dagcheck.inventory import load_inventory
from dagcheck.lab import faults, persist
from dagcheck.lab.build import build_organization
from dagcheck.lab.settings import Fault, lab_settings
from tests.conftest import LAB_YML, lab_data
from tests.processes import until


def test_a_bad_fault_kind_is_refused_by_the_labs_schema_naming_field_and_file(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(lab_data([{"kind": "stuck_queue", "server": "mbx1"}, {"kind": "meteor"}])), encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.file == str(path) and caught.value.path == "lab.faults[1].kind"
    assert "'meteor' is not one of" in caught.value.problem and "stuck_queue" in caught.value.problem
    assert "inventory/lab.schema.json" in caught.value.problem  # where the lab's kinds are declared
    assert str(caught.value).startswith(f"invalid inventory {path}: lab.faults[1].kind: ")


def test_the_product_schema_names_no_lab_fault_kind() -> None:
    text = paths.INVENTORY_SCHEMA.read_text(encoding="utf-8")
    named = sorted(kind for kind in faults.known_kinds() if f'"{kind}"' in text)
    assert named == [], f"the product schema names lab fault kinds: {named}"


def test_the_labs_schema_lists_exactly_the_kinds_the_lab_can_inject() -> None:
    schema = json.loads(paths.LAB_SCHEMA.read_text(encoding="utf-8"))
    assert set(schema["$defs"]["fault"]["properties"]["kind"]["enum"]) == faults.known_kinds()


def test_the_product_keeps_the_lab_section_raw_and_the_lab_parses_it() -> None:
    inventory = load_inventory(LAB_YML)
    assert isinstance(inventory.lab, dict)
    settings = lab_settings(inventory)
    assert [db.name for db in settings.databases] == ["DB01", "DB02", "DB03", "DB04"]
    assert settings.databases[3].lagged == {"mbx2": "7.00:00:00"} and settings.latency is None


def test_a_state_file_saved_before_the_lab_owned_fault_still_loads() -> None:
    org = build_organization(load_inventory(LAB_YML))
    org.runtime_faults.append(Fault("slow_cmdlet", {"server": "mbx1", "seconds": 1}))
    saved = json.dumps(persist.dump(org))
    old = saved.replace("dagcheck.lab.settings:Fault", "dagcheck.inventory:Fault").replace("lab.objects:", "lab.state:")
    assert "dagcheck.lab.state:LabServer" in old and "dagcheck.inventory:Fault" in old
    restored = persist.restore(json.loads(old))
    assert restored.runtime_faults == [Fault("slow_cmdlet", {"server": "mbx1", "seconds": 1})]
    assert persist.dump(restored)["org"] == persist.dump(org)["org"]


def test_the_state_saver_saves_when_asked_though_nothing_changed(tmp_path: Path) -> None:
    """What `lab serve` does on SIGUSR1: a reader outside the lab's process waits for a save made after it asked."""
    path = tmp_path / "lab.json"
    saver = persist.Saver(build_organization(load_inventory(LAB_YML)), path, {}).start()
    try:

        def written() -> tuple[int, int]:
            st = path.stat()
            return st.st_ino, st.st_mtime_ns

        first = written()
        saver.ask()
        until("save of the lab's state on request", lambda: written() != first, 5)
    finally:
        saver.stop()
