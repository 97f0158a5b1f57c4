"""What was left out of the scores, each as one line: the configs that were incomplete and the shards and
images that could not be read. Shared by table.md, report.html and the CLI's summary, so all say the same."""
from __future__ import annotations


def describe_incomplete(results: dict) -> str:
    """One line: the configs whose planned shard set was not complete when they were scored."""
    return "; ".join(f"{config} ({', '.join(what)})" for config, what in results["data"]["incomplete"].items())


def describe_unreadable(unreadable: dict, examples: int = 3) -> str:
    """One line: which configs (file: reason) and images (id: reason) could not be read."""
    out = []
    for config, what in unreadable.items():
        for entry in what.get("files", []):
            out.append(f"{config} ({entry['file'] + ': ' if entry.get('file') else ''}{entry['reason']})")
        images = what.get("images", [])
        if images:
            shown = ", ".join(f"{e['image_id']}: {e['reason']}" for e in images[:examples])
            more = f", and {len(images) - examples} more" if len(images) > examples else ""
            out.append(f"{len(images)} image(s) of {config} ({shown}{more})")
    return "; ".join(out)
