"""`./vp book NOTEBOOK...`: execute only the chapters named (in VP_BOOK_EXECUTE, space-separated file
names; set and empty: none). Every other chapter shows the outputs the cache holds for its current
code, or none if it was never executed. Without VP_BOOK_EXECUTE, every chapter the cache lacks runs."""
import os
from pathlib import Path

import nbformat
from jupyter_cache import get_cache


def setup(app):
    app.connect("config-inited", _execute_only_named)
    app.connect("html-page-context", _one_of_each_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def _execute_only_named(app, config) -> None:
    named = os.environ.get("VP_BOOK_EXECUTE")
    if named is None:
        return
    # MyST-NB's own default when the book sets no cache path: beside the HTML folder
    cache = get_cache(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    chapters = sorted(Path(app.srcdir, "notebooks").glob("*.ipynb"))
    config.nb_execution_excludepatterns = [f"notebooks/{nb.name}" for nb in chapters
                                           if nb.name not in named.split() and not _cached(cache, nb)]


def _cached(cache, notebook: Path) -> bool:
    """Whether the cache holds outputs for the notebook's current code cells (how MyST-NB matches it)."""
    try:
        cache.match_cache_notebook(nbformat.read(notebook, as_version=4))
    except KeyError:
        return False
    return True


def _one_of_each_script(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated scripts from a page. sphinx-thebe and sphinx-togglebutton each reach the page's
    list twice in this build, and a second `const THEBE_JS_URL` is a JavaScript error on every page."""
    seen, kept = set(), []
    for script in context.get("script_files", []):
        # an inline script's file name is None or "", depending on which extension added it
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept
