"""PlainHttpExchange, byte by byte: a plain HTTP/1.1 request with its body in, one answer out."""

from __future__ import annotations

from stelar_core.plugin_api import HttpRequest, HttpResponse, PlainHttpExchange

POST = (
    b"POST /api/publish?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    b"X-Tag: one\r\nX-Tag: two\r\nContent-Length: 13\r\n\r\n"
    b'{"room":"r1"}'
)


def test_a_request_split_anywhere_gives_the_same_request_with_its_body() -> None:
    for cut in range(1, len(POST)):
        exchange = PlainHttpExchange("10.0.0.1", 1024)
        assert exchange.receive(POST[:cut]) is None
        request = exchange.receive(POST[cut:])
        assert request == HttpRequest(
            "POST",
            "/api/publish",
            "x=1",
            {"host": "a", "content-type": "application/json", "x-tag": "one, two", "content-length": "13"},
            "10.0.0.1",
            body=b'{"room":"r1"}',
        )


def test_a_chunked_body_is_joined() -> None:
    exchange = PlainHttpExchange("p", 1024)
    request = exchange.receive(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert isinstance(request, HttpRequest) and request.body == b"abcde"


def test_a_declared_body_over_the_cap_is_refused_before_it_is_read() -> None:
    exchange = PlainHttpExchange("p", 10)
    refusal = exchange.receive(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
    assert isinstance(refusal, HttpResponse) and refusal.status == 413
    assert b"at most 10 bytes" in refusal.body
    answer = exchange.respond(refusal)
    assert answer is not None and answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_growing_over_the_cap_is_refused() -> None:
    exchange = PlainHttpExchange("p", 4)
    head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert exchange.receive(head + b"3\r\nabc\r\n") is None
    refusal = exchange.receive(b"3\r\ndef\r\n")
    assert isinstance(refusal, HttpResponse) and refusal.status == 413


def test_a_malformed_request_gets_400_naming_the_fault() -> None:
    exchange = PlainHttpExchange("p", 10)
    refusal = exchange.receive(b"NOT HTTP\r\n\r\n")
    assert isinstance(refusal, HttpResponse) and refusal.status == 400
    assert b"bad request" in refusal.body
    answer = exchange.respond(refusal)
    assert answer is not None and answer.startswith(b"HTTP/1.1 400 ")


def test_the_answer_carries_length_and_close() -> None:
    exchange = PlainHttpExchange("p", 100)
    assert isinstance(exchange.receive(b"DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n"), HttpRequest)
    answer = exchange.respond(HttpResponse(200, b"{}", {"Content-Type": "application/json"}))
    assert answer is not None
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Length: 2" in head and b"Connection: close" in head and body == b"{}"


def test_the_client_address_callback_names_the_client() -> None:
    exchange = PlainHttpExchange("127.0.0.1", 100, lambda peer, headers: headers.get("x-real", peer))
    request = exchange.receive(b"GET / HTTP/1.1\r\nHost: a\r\nX-Real: 1.2.3.4\r\n\r\n")
    assert isinstance(request, HttpRequest) and request.remote_address == "1.2.3.4"
