"""Open Referral (HSDS) directories in: reading, mapping, and `refnet directory import`.

Unit tests read the fixtures in tests/fixtures/hsds (one small directory written
twice, as HSDS JSON and as a CSV data package), the HSDS conformance examples in
../shared/conformance/openreferral-hsds and the bundled Dallas sample region.
Integration tests publish to a real broker and read the directory topic back.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.openreferral.areas import language_code, postal_codes_in_geojson
from connectors.openreferral.importer import (
    DEFAULT_RADIUS_KM,
    Conversion,
    HsdsError,
    content_hash,
    convert,
    org_id_for,
    read,
)
from connectors.openreferral.taxonomy import Mapping, MappingError, Term
from deploy.directory import (
    DEFAULT_MAPPING,
    ImportOptions,
    read_directory,
    run_import,
)
from deploy.settings import Settings
from schemas.codes import PARTY_ID_RE, ServiceStatus
from schemas.errors import RefnetError
from schemas.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "hsds"
MINI_JSON = FIXTURES / "mini.json"
MINI_CSV = FIXTURES / "mini-csv"
SAMPLE_REGION = ROOT / "deploy" / "data" / "dallas" / "directory.json"
CONFORMANCE = ROOT.parent / "shared" / "conformance" / "openreferral-hsds"
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EXAMPLE_SERVICE = "ac148810-d857-441c-9679-408f346de14b"

needs_conformance = pytest.mark.skipif(
    not CONFORMANCE.is_dir(),
    reason=f"the HSDS conformance examples are not at {CONFORMANCE} (shared/ beside the clone)",
)


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return Mapping.load(DEFAULT_MAPPING)


def convert_paths(mapping: Mapping, *paths: Path, **options: object) -> Conversion:
    return convert(read(paths), mapping, now=NOW, **options)  # type: ignore[arg-type]


def by_id(conversion: Conversion) -> dict[str, dict[str, object]]:
    return {
        s.event.service_id: s.event.model_dump(mode="json", exclude={"event_id", "occurred_at"})
        for s in conversion.services
    }


# ---------------------------------------------------------------- JSON and CSV alike
@pytest.mark.parametrize("source", [MINI_JSON, MINI_CSV], ids=["json", "csv"])
def test_each_hsds_construct_maps_to_its_service_upserted_field(
    mapping: Mapping, source: Path
) -> None:
    services = by_id(convert_paths(mapping, source))
    pantry = services["svc-pantry"]
    # service areas: ZIP codes named in an area's name and in a text extent
    assert pantry["postal_codes"] == ["75210", "75215", "75216", "75241"]
    assert pantry["location"] == {"lat": 32.7582, "lon": -96.7623}
    assert pantry["radius_km"] is None  # the areas name postal codes: no radius
    # languages: an ISO 639-1 code, a 639-2 code, a name only
    assert pantry["languages"] == ["en", "es", "vi"]
    assert (pantry["min_age"], pantry["max_age"]) == (18, 64)
    # HSDS 3.1 capacities: the latest updated one, with its unit's name
    assert pantry["capacity"] == {"available": 7, "unit": "households", "maximum": 20}
    assert pantry["response_sla"] == "PT6H"
    assert pantry["categories"] == ["food-insecurity"]  # Open Eligibility "Food Pantry"
    shelter = services["svc-shelter"]
    assert shelter["status"] == ServiceStatus.TEMPORARILY_CLOSED.value
    assert shelter["categories"] == ["homelessness"]  # AIRS BH-1800.8500 by prefix
    # a GeoJSON polygon with a hole: 75215's centroid is inside, 75210's in the hole
    assert shelter["postal_codes"] == ["75215"]
    assert shelter["languages"] == ["es"]  # the location's languages when the service has none
    rent = services["svc-rent"]
    assert rent["org_id"] == "eastside-housing"  # pinned by an organization_identifier
    assert rent["categories"] == ["housing-instability"]  # a Gravity code as the term
    # no service area: the location's postal code (ZIP+4 as its ZIP) and a radius around it
    assert rent["postal_codes"] == ["75223"]
    assert rent["radius_km"] == DEFAULT_RADIUS_KM
    assert services["svc-rides"]["categories"] == ["transportation-insecurity"]  # keyword


def test_json_and_csv_of_one_directory_give_the_same_events(mapping: Mapping) -> None:
    from_json = convert_paths(mapping, MINI_JSON)
    from_csv = convert_paths(mapping, MINI_CSV)
    assert by_id(from_json) == by_id(from_csv)
    assert {s.event.service_id: content_hash(s.event) for s in from_json.services} == {
        s.event.service_id: content_hash(s.event) for s in from_csv.services
    }


@pytest.mark.parametrize("source", [MINI_JSON, MINI_CSV], ids=["json", "csv"])
def test_a_service_no_term_or_keyword_maps_is_reported_and_never_guessed(
    mapping: Mapping, source: Path
) -> None:
    conversion = convert_paths(mapping, source)
    assert [u.service_id for u in conversion.unmapped] == ["svc-knit"]
    assert conversion.unmapped[0].terms == ('"Knitting" [9999] (Open Eligibility)',)
    assert "svc-knit" not in by_id(conversion)


def test_a_datapackage_json_names_where_the_tables_are(mapping: Mapping, tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(MINI_CSV, package)
    (package / "services.csv").rename(package / "svc-table.csv")
    descriptor = {"name": "mini", "resources": [{"name": "service", "path": "svc-table.csv"}]}
    (package / "datapackage.json").write_text(json.dumps(descriptor))
    assert by_id(convert_paths(mapping, package)) == by_id(convert_paths(mapping, MINI_CSV))


def test_an_hsds_api_page_and_a_single_service_object_are_read(
    mapping: Mapping, tmp_path: Path
) -> None:
    organizations = json.loads(MINI_JSON.read_text())
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"total_items": 2, "page_number": 1, "contents": organizations}))
    assert by_id(convert_paths(mapping, page)) == by_id(convert_paths(mapping, MINI_JSON))
    service = dict(organizations[1]["services"][0])
    service["organization"] = {k: v for k, v in organizations[1].items() if k != "services"}
    single = tmp_path / "service.json"
    single.write_text(json.dumps(service))
    assert list(by_id(convert_paths(mapping, single))) == ["svc-rent"]


def test_re_converting_the_same_files_gives_the_same_content_hashes(mapping: Mapping) -> None:
    first = convert_paths(mapping, MINI_JSON)
    later = convert(read([MINI_JSON]), mapping, now=NOW + timedelta(days=3))
    assert [content_hash(s.event) for s in first.services] == [
        content_hash(s.event) for s in later.services
    ]
    assert first.services[0].event.event_id != later.services[0].event.event_id


# ---------------------------------------------------------------- bad files
def test_broken_json_is_refused_with_the_file_line_and_column(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "o1", "name": "Org",\n  "services": [}]')
    with pytest.raises(HsdsError) as caught:
        read([broken])
    (problem,) = caught.value.problems
    assert problem.where == "broken.json"
    assert "not valid JSON" in problem.message and "line 2" in problem.message


def test_a_csv_with_missing_columns_is_refused_naming_the_file_and_columns(
    tmp_path: Path,
) -> None:
    package = tmp_path / "package"
    shutil.copytree(MINI_CSV, package)
    services = package / "services.csv"
    lines = services.read_text().splitlines()
    services.write_text("\n".join(line.rsplit(",", 3)[0] for line in lines) + "\n")
    (package / "addresses.csv").write_text("id,location_id,city\nad1,loc-river,Dallas\n")
    with pytest.raises(HsdsError) as caught:
        read([package])
    messages = {p.where: p.message for p in caught.value.problems}
    assert "status" in messages["services.csv"] and "missing column" in messages["services.csv"]
    assert "postal_code" in messages["addresses.csv"]


def test_an_attribute_naming_an_unknown_taxonomy_term_is_refused(
    mapping: Mapping, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    shutil.copytree(MINI_CSV, package)
    with (package / "attributes.csv").open("a") as handle:
        handle.write("at9,svc-rides,service,service,t-nowhere,\n")
    with pytest.raises(HsdsError) as caught:
        convert(read([package]), mapping, now=NOW)
    (problem,) = caught.value.problems
    assert problem.where == "attributes.csv line 7, field taxonomy_term_id"
    assert "t-nowhere" in problem.message


def test_bad_values_are_refused_all_at_once_naming_row_and_field(
    mapping: Mapping, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    shutil.copytree(MINI_CSV, package)
    services = package / "services.csv"
    text = services.read_text()
    text = text.replace("Groceries twice a week.,active,18,64", "Groceries.,open,eighteen,64")
    text = text.replace("svc-rides,org-b-0002", "svc-rides,org-nowhere")
    services.write_text(text)
    with pytest.raises(HsdsError) as caught:
        convert(read([package]), mapping, now=NOW)
    wheres = sorted(p.where for p in caught.value.problems)
    assert wheres == [
        "services.csv line 2, field minimum_age",
        "services.csv line 2, field status",
        "services.csv line 5, field organization_id",
    ]
    assert "nothing was imported" in str(caught.value)


def test_a_bad_sla_attribute_and_a_duplicate_service_are_refused(
    mapping: Mapping, tmp_path: Path
) -> None:
    organizations = json.loads(MINI_JSON.read_text())
    organizations[0]["services"][0]["attributes"][1]["value"] = "P120D"
    organizations[1]["services"].append(dict(organizations[1]["services"][0]))
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(organizations))
    with pytest.raises(HsdsError) as caught:
        convert(read([path]), mapping, now=NOW)
    messages = [str(p) for p in caught.value.problems]
    assert any("appears twice" in m and "svc-rent" in m for m in messages)
    with pytest.raises(HsdsError) as caught:
        organizations[1]["services"].pop()
        path.write_text(json.dumps(organizations))
        convert(read([path]), mapping, now=NOW)
    (problem,) = caught.value.problems
    assert problem.where == "bad.json $[0].services[0].attributes[1].value"
    assert "P90D" in problem.message


def test_unusable_geodata_is_a_warning_not_an_error(mapping: Mapping, tmp_path: Path) -> None:
    organizations = json.loads(MINI_JSON.read_text())
    pantry = organizations[0]["services"][0]
    pantry["service_at_locations"][0]["location"]["latitude"] = 100
    pantry["service_areas"].append({"id": "a9", "extent": "{not json", "extent_type": "geojson"})
    pantry["service_areas"].append({"id": "a8", "extent": "<kml/>", "extent_type": "kml"})
    pantry["languages"].append({"id": "l9", "name": "Klingon"})
    path = tmp_path / "geo.json"
    path.write_text(json.dumps(organizations))
    conversion = convert(read([path]), mapping, now=NOW)
    warnings = "\n".join(str(w) for w in conversion.warnings)
    assert "latitude/longitude missing or out of range" in warnings
    assert "not JSON" in warnings and "'kml' is not read" in warnings
    assert "Klingon" in warnings
    assert by_id(conversion)["svc-pantry"]["location"] is None


# ---------------------------------------------------------------- pieces
def test_org_ids_are_party_ids_stable_and_distinct() -> None:
    first = org_id_for("d9d5e0f5-d3ce-4f73-9a2f-4dd0ecc6c610", "Example Organization Inc.")
    assert first == org_id_for("d9d5e0f5-d3ce-4f73-9a2f-4dd0ecc6c610", "Example Organization Inc.")
    assert first.startswith("example-organization-inc-") and PARTY_ID_RE.fullmatch(first)
    assert org_id_for("other-id", "Example Organization Inc.") != first
    long_name = org_id_for("x", "Ñandú " + "Community Services " * 10)
    assert PARTY_ID_RE.fullmatch(long_name) and long_name.startswith("nandu-community")
    assert PARTY_ID_RE.fullmatch(org_id_for("y", "中文")) and org_id_for("y", "中文").startswith(
        "org-"
    )


def test_two_organizations_with_one_pinned_id_are_refused(mapping: Mapping, tmp_path: Path) -> None:
    organizations = json.loads(MINI_JSON.read_text())
    organizations[0]["organization_identifiers"] = organizations[1]["organization_identifiers"]
    path = tmp_path / "pinned.json"
    path.write_text(json.dumps(organizations))
    with pytest.raises(HsdsError, match="both get org_id eastside-housing"):
        convert(read([path]), mapping, now=NOW)


def test_the_mapping_matches_codes_by_longest_prefix_names_loosely_and_whole_words(
    mapping: Mapping,
) -> None:
    def term(code: str | None, name: str | None) -> list[str] | None:
        found = mapping.for_term(Term(None, code, name, None))
        return sorted(found[0]) if found else None

    assert term("BD-1800.2000", None) == ["food-insecurity"]
    assert term("BH-1800.8500-100", None) == ["homelessness"]
    assert term("BH-9999", None) is None  # BH alone maps nothing
    assert term("bd-1800", None) == ["food-insecurity"]  # codes compare in capitals
    assert term("101-2", "maintenance and repairs") == ["inadequate-housing"]
    assert term(None, "Safe Housing") == ["homelessness", "intimate-partner-violence"]
    assert term(None, "Knitting") is None
    assert sorted(mapping.for_text("Our PANTRY is open")[0]) == ["food-insecurity"]
    assert mapping.for_text("pantryman and co-pantry-less")[0] == {"food-insecurity"}
    assert mapping.for_text("a pantryman")[0] == set()


def test_a_mapping_file_with_an_unknown_category_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text('[keywords]\n"pantry" = ["food-insecurity"]\n"soup" = ["hunger"]\n')
    with pytest.raises(MappingError, match=r"\[keywords\] 'soup': 'hunger' is not a Gravity"):
        Mapping.load(path)
    path.write_text('[colors]\n"red" = ["stress"]\n')
    with pytest.raises(MappingError, match="unknown table"):
        Mapping.load(path)


def test_a_replacement_mapping_changes_the_categories(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text('[open_eligibility]\n"Knitting" = ["social-connection"]\n')
    conversion = convert(read([MINI_JSON]), Mapping.load(path), now=NOW)
    assert by_id(conversion)["svc-knit"]["categories"] == ["social-connection"]
    # without the default file's entries, only Gravity codes map
    assert sorted(u.service_id for u in conversion.unmapped) == [
        "svc-pantry",
        "svc-rides",
        "svc-shelter",
    ]


def test_geojson_multipolygons_and_collections_reduce_to_postal_codes() -> None:
    box_75215 = [
        [[-96.77, 32.75], [-96.755, 32.75], [-96.755, 32.765], [-96.77, 32.765], [-96.77, 32.75]]
    ]
    box_75223 = [
        [[-96.75, 32.79], [-96.74, 32.79], [-96.74, 32.80], [-96.75, 32.80], [-96.75, 32.79]]
    ]
    multi = {"type": "MultiPolygon", "coordinates": [box_75215, box_75223]}
    assert postal_codes_in_geojson(multi) == ["75215", "75223"]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": box_75223}}
        ],
    }
    assert postal_codes_in_geojson(collection) == ["75223"]
    with pytest.raises(ValueError, match="a Point has no area"):
        postal_codes_in_geojson({"type": "Point", "coordinates": [-96.7, 32.7]})
    with pytest.raises(ValueError, match="at least 4 positions"):
        postal_codes_in_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})


def test_language_codes_become_iso_639_1_where_one_exists() -> None:
    assert language_code("spa", None) == "es"
    assert language_code("es-MX", None) == "es-MX"
    assert language_code("ES_mx", None) == "es-mx"
    assert language_code(None, "Tiếng Việt") == "vi"
    assert language_code("xx1", "nothing") is None
    assert language_code("ur", None) == "ur"


# ---------------------------------------------------------------- the examples
@needs_conformance
@pytest.mark.parametrize(
    "example",
    [
        "examples/service_full.json",
        "examples/organization_full.json",
        "examples/service_at_location_full.json",
        "3.1-dev/examples/service_full.json",
        "examples/csv",
    ],
)
def test_the_hsds_conformance_examples_import_cleanly(mapping: Mapping, example: str) -> None:
    conversion = convert_paths(mapping, CONFORMANCE / example)
    assert conversion.unmapped == []
    (service,) = conversion.services
    event = service.event
    assert event.service_id == EXAMPLE_SERVICE
    assert event.org_id == org_id_for(
        "d9d5e0f5-d3ce-4f73-9a2f-4dd0ecc6c610", "Example Organization Inc."
    )
    assert event.name == "Community Counselling" and event.status is ServiceStatus.ACTIVE
    assert [c.value for c in event.categories] == ["stress"]  # keyword "counselling"
    assert (event.min_age, event.max_age, event.languages) == (12, 100, ["ur"])
    if example.startswith("3.1"):
        assert event.capacity is not None
        assert (event.capacity.available, event.capacity.unit) == (12, "Kilogram")
    # latitude 100 and an extent that is not GeoJSON: reported, not fatal
    assert any("out of range" in w.message for w in conversion.warnings)


@needs_conformance
def test_the_conformance_location_and_term_alone_hold_no_service(mapping: Mapping) -> None:
    conversion = convert_paths(
        mapping, CONFORMANCE / "examples/location.json", CONFORMANCE / "examples/taxonomy_term.json"
    )
    assert conversion.services == [] and conversion.unmapped == []


def test_the_sample_region_imports_with_its_categories_languages_and_areas(
    mapping: Mapping,
) -> None:
    conversion = convert_paths(mapping, SAMPLE_REGION)
    names = {s.event.name: s.event for s in conversion.services}
    assert len(names) == 19 and len(conversion.organizations) == 15
    assert [u.name for u in conversion.unmapped] == ["Bicycle Repair Workshop"]
    categories = {c.value for s in conversion.services for c in s.event.categories}
    assert categories >= {
        "food-insecurity",
        "homelessness",
        "housing-instability",
        "inadequate-housing",
        "utility-insecurity",
        "transportation-insecurity",
        "intimate-partner-violence",
    }
    languages = {lang for s in conversion.services for lang in s.event.languages}
    assert languages == {"en", "es", "vi", "am"}
    mobile = names["South Dallas Mobile Pantry"]
    assert {"75210", "75215", "75216", "75241"} <= set(mobile.postal_codes)  # its polygon
    assert names["Eviction Defense"].categories[0].value == "housing-instability"  # a keyword
    assert names["East Dallas Church Pantry"].status is ServiceStatus.TEMPORARILY_CLOSED
    assert all(s.event.response_sla is not None for s in conversion.services)
    assert all(
        s.event.capacity is not None
        for s in conversion.services
        if s.event.status is ServiceStatus.ACTIVE
    )


# ---------------------------------------------------------------- the command (no broker)
def test_dry_run_without_a_broker_checks_the_files_and_prints_the_events(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "REFNET_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "directory", "import", "--dry-run", str(MINI_CSV)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "would publish (new) svc-pantry  Riverside Pantry" in done.stdout
    assert '"service_id":"svc-pantry"' in done.stdout
    assert "could not map 1 service(s)" in done.stdout and "svc-knit" in done.stdout
    assert "dry run: 4 to publish (4 new, 0 changed)" in done.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "directory", "import", str(broken)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "broken.json: not valid JSON" in bad.stderr and "nothing was imported" in bad.stderr


# ---------------------------------------------------------------- the command (real broker)
def _import(bootstrap: str, topics: Topics, *paths: Path, **options: object) -> tuple[int, str]:
    from connectors.kafka.auth import PLAINTEXT
    from deploy.provision import Admin

    settings = Settings.from_env({"REFNET_TOPIC_PREFIX": topics.prefix, "REFNET_PARTITIONS": "3"})
    admin = Admin(bootstrap, PLAINTEXT, settings.data_dir)
    out = io.StringIO()
    status = run_import(settings, admin, ImportOptions(paths=paths, **options), out)  # type: ignore[arg-type]
    return status, out.getvalue()


@pytest.mark.integration
def test_import_publishes_once_and_a_re_import_publishes_nothing_new(
    kafka_bootstrap: str, topics: Topics
) -> None:
    paths = [SAMPLE_REGION, MINI_JSON]
    if CONFORMANCE.is_dir():
        paths.append(CONFORMANCE / "3.1-dev/examples/service_full.json")
    status, out = _import(kafka_bootstrap, topics, *paths)
    assert status == 0, out
    expected = 19 + 4 + (1 if CONFORMANCE.is_dir() else 0)
    assert f"imported: {expected} published ({expected} new, 0 changed)" in out
    current = read_directory(kafka_bootstrap, topics.directory)
    assert len(current) == expected
    assert {c.source for c in current.values()} == {"hsds"}
    from connectors.kafka.admin import list_topics

    names = list_topics(kafka_bootstrap)
    assert topics.org_referrals("eastside-housing") in names
    assert topics.org_updates("eastside-housing") in names
    # again, from "another machine": nothing but the topic to compare with
    status, again = _import(kafka_bootstrap, topics, *paths)
    assert status == 0
    assert f"imported: 0 published (0 new, 0 changed), {expected} unchanged" in again
    assert read_directory(kafka_bootstrap, topics.directory) == current


@pytest.mark.integration
def test_a_changed_service_is_republished_and_a_missing_one_removed_only_with_prune(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    assert _import(kafka_bootstrap, topics, MINI_JSON)[0] == 0
    organizations = json.loads(MINI_JSON.read_text())
    organizations[0]["services"][0]["capacities"][0]["available"] = 3
    del organizations[1]["services"][1]  # svc-rides leaves the directory
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(organizations))
    status, out = _import(kafka_bootstrap, topics, edited)
    assert status == 0
    assert "publish (changed) svc-pantry" in out
    assert "imported: 1 published (0 new, 1 changed), 2 unchanged, 0 removed" in out
    assert "svc-rides" in read_directory(kafka_bootstrap, topics.directory)
    status, out = _import(kafka_bootstrap, topics, edited, prune=True)
    assert "remove svc-rides" in out and "1 removed" in out
    assert "svc-rides" not in read_directory(kafka_bootstrap, topics.directory)
    # another source's services are never pruned by this one
    status, out = _import(kafka_bootstrap, topics, MINI_CSV, source="county", prune=True)
    assert "0 removed" in out


@pytest.mark.integration
def test_a_bad_file_among_good_ones_publishes_nothing(
    kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x", "name": ')
    status, out = _import(kafka_bootstrap, topics, SAMPLE_REGION, broken)
    assert status == 2
    assert read_directory(kafka_bootstrap, topics.directory) == {}
    strict, out = _import(kafka_bootstrap, topics, MINI_JSON, strict=True)
    assert strict == 1 and "refused (--strict)" in out
    assert read_directory(kafka_bootstrap, topics.directory) == {}


@pytest.mark.integration
def test_the_network_reads_an_imported_service(kafka_bootstrap: str) -> None:
    """The worker's own decoder accepts what the importer wrote (read_committed, headers)."""
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as Partition

    from schemas.decode import Decoded, decode

    topics = Topics(prefix=f"t{uuid.uuid4().hex[:10]}", partitions=3)
    assert _import(kafka_bootstrap, topics, MINI_JSON)[0] == 0
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": "x",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([Partition(topics.directory, p) for p in range(3)])
    decoded: list[str] = []
    eofs = 0
    while eofs < 3:
        message = consumer.poll(10)
        assert message is not None
        if message.error():
            eofs += 1
            continue
        result = decode(topics.directory, message.key(), message.value(), topics=topics)
        assert isinstance(result, Decoded)
        decoded.append(result.event.service_id)  # type: ignore[union-attr]
    consumer.close()
    assert sorted(decoded) == ["svc-pantry", "svc-rent", "svc-rides", "svc-shelter"]


@pytest.mark.integration
def test_a_transaction_committed_while_the_directory_is_read_is_read_whole(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """A read_committed client is told the last stable offset, which stays behind a
    transaction until its markers are written; the reader reads to the high
    watermark, so a directory read right after an import is never empty."""
    import threading

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"{topics.prefix}.directory-read-test"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"t-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for n in range(3):
        producer.produce(topic, key=f"svc-{n}".encode(), value=b"{}")
    producer.flush(30)
    committer = threading.Timer(1.0, producer.commit_transaction, args=(30,))
    committer.start()
    try:
        # the transaction is still open when reading starts, committed a second later
        current = read_directory(kafka_bootstrap, topic, timeout=20)
    finally:
        committer.join()
    assert sorted(current) == ["svc-0", "svc-1", "svc-2"]


@pytest.mark.parametrize("error", [HsdsError, MappingError])
def test_directory_errors_are_refnet_errors_and_still_value_errors(error: type) -> None:
    assert issubclass(error, RefnetError)
    assert issubclass(error, ValueError)
