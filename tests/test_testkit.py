"""The test kit itself: the transport fixture can be parametrized for other transports."""

import pytest


@pytest.mark.parametrize("stelar_transport", ["memory"], indirect=True)
async def test_stelar_transport_can_be_parametrized(stelar_transport, stelar_server, stelar_client):
    assert stelar_transport == "memory"
    assert stelar_server.transports[0].name == "memory"
    assert [c.id for c in stelar_server.get_clients()] == [stelar_client.id]


async def test_hook_recorder_sees_calls_with_arguments(
    stelar_server_factory, stelar_client_factory, stelar_hook_recorder
):
    server = await stelar_server_factory(hooks={"on_client_connect": lambda client_id: None})
    recorder = stelar_hook_recorder(server)
    client = await stelar_client_factory(server)
    (call,) = recorder.named("on_client_connect")
    assert call.kwargs["client_id"] == client.id and call.kwargs["protocol"] == "memory"
