"""GRIDMAP_PUBLIC_URL is the base of every absolute link; GRIDMAP_TRUSTED_HOSTS refuses other Host headers."""

import json

import pytest

from server import create_app
from tests.factories import six_grids

PUBLIC = "https://grid.example.gov.cn/gridmap"


def make_app(data_dir, **settings):
    return create_app({"DATA_DIR": str(data_dir), "DEMO": False, "TESTING": True, **settings})


def hrefs(document) -> list[str]:
    """Every link of a JSON document, at any depth."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            if isinstance(value.get("href"), str):
                found.append(value["href"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(document)
    return found


DOCUMENTS = ["/api", "/api/conformance", "/api/collections", "/api/collections/grids",
             "/api/collections/grids/items?limit=2", "/api/collections/grids/items/g00",
             "/api/collections/grids/versions"]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_links_name_the_public_url_whatever_the_host(data_dir, path):
    app = make_app(data_dir, PUBLIC_URL=PUBLIC)
    app.extensions["gridmap"].store.write("grids", six_grids(), author="t")
    client = app.test_client()
    for prefix in ("", "/gridmap"):  # a proxy that strips the prefix, and one that passes it on
        resp = client.get(prefix + path, headers={"Host": "attacker.example"})
        assert resp.status_code == 200
        links = hrefs(json.loads(resp.data))
        assert links and all(link.startswith(PUBLIC + "/api") for link in links), links
        assert "Host" not in resp.vary


def test_the_openapi_server_is_the_public_url(data_dir):
    client = make_app(data_dir, PUBLIC_URL=PUBLIC).test_client()
    doc = client.get("/api/openapi", headers={"Host": "attacker.example"}).get_json(force=True)
    assert doc["servers"] == [{"url": PUBLIC + "/api"}]


def test_pages_link_under_the_prefix(data_dir):
    client = make_app(data_dir, PUBLIC_URL=PUBLIC).test_client()
    assert 'href="/gridmap/static/' in client.get("/login").get_data(as_text=True)


def test_without_a_public_url_host_dependent_answers_vary_on_host(client):
    resp = client.get("/api/conformance", headers={"Host": "one.example"})
    assert resp.cache_control.max_age == 60  # a shared-cache lifetime...
    assert "Host" in resp.vary  # ...so caches must keep one copy a Host
    assert hrefs(resp.get_json())[0].startswith("http://one.example/api")
    assert "Host" in client.get("/api").vary


@pytest.mark.parametrize("public", ["", PUBLIC])
def test_other_hosts_are_refused_with_a_json_400(data_dir, public):
    app = make_app(data_dir, PUBLIC_URL=public, TRUSTED_HOSTS="grid.example.gov.cn, .intranet.example")
    client = app.test_client()
    for path in ("/api", "/", "/healthz"):
        resp = client.get(path, headers={"Host": "attacker.example"})
        assert resp.status_code == 400
        assert resp.get_json()["error"]["code"] == "untrusted_host"
    token = app.extensions["gridmap_users"].add("ed", "editor")[1]
    resp = client.post("/api/uploads/grids", headers={"Host": "attacker.example", "Authorization": f"Bearer {token}"})
    assert resp.status_code == 400
    for host in ("grid.example.gov.cn", "grid.example.gov.cn:8443", "maps.intranet.example"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_the_refusal_of_another_host_is_in_the_readers_language(data_dir):
    client = make_app(data_dir, TRUSTED_HOSTS="grid.example.gov.cn").test_client()
    for lang, said in (("zh", "本服务不响应主机 'attacker.example'"),
                       ("en", "this server does not answer for the host 'attacker.example'")):
        resp = client.get("/api", headers={"Host": "attacker.example", "Accept-Language": lang})
        assert resp.status_code == 400 and resp.get_json()["error"]["message"] == said


@pytest.mark.parametrize("bad", ["grid.example.gov.cn", "ftp://grid.example.gov.cn", "https://", "https://a/?x=1"])
def test_a_bad_public_url_stops_the_start(data_dir, bad):
    with pytest.raises(ValueError, match="GRIDMAP_PUBLIC_URL"):
        make_app(data_dir, PUBLIC_URL=bad)
