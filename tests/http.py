"""Small helpers for tests that talk to the app through Flask's test client."""


def get_json(client, url, status=200, **kwargs):
    """GET ``url``, check the status (showing the body when it is wrong) and return the parsed JSON."""
    resp = client.get(url, **kwargs)
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json(force=True)
