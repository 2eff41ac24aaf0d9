"""Command line: ``python -m mlcourse.data recipe``, ``build``, ``import`` and ``import-mirdata``."""

import argparse
import os
import sys

from .build import SIZES, build_dataset, recipe_dir
from .collections import MIRDATA_CONCEPTS, import_audio_folder, import_mirdata
from .recipe import RECIPE_SEED, write_recipe


def at_least_one(text: str) -> int:
    """Parse a command-line count that must be 1 or more (argparse turns a failure into a usage error)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m mlcourse.data`` with ``argv`` (default: the command line); return the exit code.

    A problem the learner can fix (a bad argument, a missing file, a full disk, a folder that cannot
    be written) is printed as one ``error:`` line, and the exit code is 2.
    """
    parser = argparse.ArgumentParser(prog="python -m mlcourse.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    recipe = commands.add_parser("recipe", help="select works from the music21 corpus and write the recipe in data/")
    recipe.add_argument("--seed", type=int, default=RECIPE_SEED)
    build = commands.add_parser("build", help="render the recipe and compute features into the cache")
    build.add_argument("--size", default="workshop", help=f"one of {', '.join(SIZES)} (default: workshop)")
    build.add_argument(
        "--workers", type=int, default=None, help="parallel processes (default: the available cores, at most 4)"
    )
    imported = commands.add_parser(
        "import", help="import an audio folder and a CSV of labels as a collection (load it with MLCOURSE_DATASET=NAME)"
    )
    imported.add_argument("folder", help="the folder of audio files")
    imported.add_argument("tags_csv", help="CSV with a file column and one column per concept")
    imported.add_argument("--name", required=True, help="the collection's name")
    imported.add_argument("--clips-per-file", type=at_least_one, default=10)
    from_mirdata = commands.add_parser(
        "import-mirdata", help=f"import a local copy of a mirdata collection ({', '.join(MIRDATA_CONCEPTS)})"
    )
    from_mirdata.add_argument("dataset", help="the mirdata name, e.g. gtzan_genre")
    from_mirdata.add_argument("--data-home", default=None, help="where your copy is (default: mirdata's)")
    from_mirdata.add_argument("--name", default=None, help="the collection's name (default: the mirdata name)")
    from_mirdata.add_argument("--clips-per-file", type=at_least_one, default=10)
    args = parser.parse_args(argv)
    cache = os.environ.get("MLCOURSE_DATA")
    if args.command != "recipe" and cache and os.path.exists(cache) and not os.path.isdir(cache):
        print(f"error: MLCOURSE_DATA={cache} names a file; it must be a folder (or not exist yet)", file=sys.stderr)
        return 2
    try:
        if args.command == "recipe":
            works, versions = write_recipe(recipe_dir(), seed=args.seed)
            print(f"wrote the recipe: {len(works)} works, {len(versions)} versions, in {recipe_dir()}")
        elif args.command == "import-mirdata":
            import_mirdata(args.dataset, args.name, args.data_home, clips_per_file=args.clips_per_file)
        elif args.command == "import":
            import_audio_folder(args.folder, args.tags_csv, args.name, clips_per_file=args.clips_per_file)
        else:
            build_dataset(args.size, workers=args.workers)
    except (ValueError, OSError, ImportError, RuntimeError) as error:  # OSError: a full disk, no permission...
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
