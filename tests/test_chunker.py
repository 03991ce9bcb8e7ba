from edge.tts import SentenceChunker, speakable, split_text


def stream(text: str, min_words: int = 3) -> list[str]:
    c = SentenceChunker(min_words)
    out: list[str] = []
    for i in range(0, len(text), 3):  # tokens of ~3 characters, like an LLM
        out += c.feed(text[i : i + 3])
    return out + c.flush()


def test_first_chunk_is_an_early_clause_then_sentences() -> None:
    text = "Sure thing, the capital of France is Paris. It is lovely, in spring. Bye"
    assert stream(text)[0] == "Sure thing, the capital of France is Paris.", "2 words are too few for a clause"
    chunks = stream(text, min_words=2)
    assert chunks[0] == "Sure thing,"
    assert chunks[1:] == ["the capital of France is Paris.", "It is lovely, in spring.", "Bye"]


def test_abbreviations_numbers_and_initials_do_not_cut() -> None:
    assert split_text("Dr. Smith measured 3.5 m in J. Town. Done!") == ["Dr. Smith measured 3.5 m in J. Town.", "Done!"]


def test_streamed_equals_whole_text_content() -> None:
    text = "Well, I think so. Really? Yes! The end"
    assert " ".join(stream(text)) == " ".join(split_text(text)) == text


def test_run_on_text_is_cut() -> None:
    chunks = split_text(" ".join(["word"] * 100))
    assert len(chunks) >= 2 and all(len(c.split()) <= 40 for c in chunks)


def test_markdown_and_emoji_are_not_spoken() -> None:
    assert speakable("**Paris** is *great* 😀 [link](http://x)") == "Paris is great link"
    assert split_text("*** ### ") == []


def test_bounded_pieces_prefer_clauses_and_keep_every_word() -> None:
    from edge.tts import bounded_pieces

    text = ("One two three four five six seven eight nine ten eleven twelve, thirteen fourteen fifteen sixteen "
            "seventeen eighteen nineteen twenty twentyone twentytwo twentythree twentyfour twentyfive.")
    pieces = bounded_pieces(text, 20)
    assert pieces[0].endswith("twelve,")  # cut at the comma, not mid-clause at word 20
    assert all(len(p.split()) <= 20 for p in pieces)
    assert " ".join(pieces) == text
    assert bounded_pieces("short one", 20) == ["short one"]
    assert bounded_pieces("   ", 20) == []
    long = " ".join(["word"] * 45)
    assert [len(p.split()) for p in bounded_pieces(long, 20)] == [20, 20, 5]
