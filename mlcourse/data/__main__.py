"""Command line: ``python -m mlcourse.data recipe`` and ``python -m mlcourse.data build``."""

import argparse
import sys

from .build import SIZES, build_dataset, recipe_dir
from .recipe import RECIPE_SEED, write_recipe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlcourse.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    recipe = commands.add_parser("recipe", help="select works from the music21 corpus and write the recipe in data/")
    recipe.add_argument("--seed", type=int, default=RECIPE_SEED)
    build = commands.add_parser("build", help="render the recipe and compute features into the cache")
    build.add_argument("--size", default="workshop",
                       help=f"one of {', '.join(SIZES)} (default: workshop)")
    build.add_argument("--workers", type=int, default=None,
                       help="parallel processes (default: the available cores, at most 4)")
    args = parser.parse_args(argv)
    try:
        if args.command == "recipe":
            works, versions = write_recipe(recipe_dir(), seed=args.seed)
            print(f"wrote the recipe: {len(works)} works, {len(versions)} versions, in {recipe_dir()}")
        else:
            build_dataset(args.size, workers=args.workers)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
