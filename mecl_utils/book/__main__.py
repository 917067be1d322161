"""``python -m mecl_utils.book``: execute the chapters and build the book (``runner.main``)."""

from mecl_utils.book.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
