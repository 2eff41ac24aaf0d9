"""Tests of mlcourse.losses (a package, so that its test files may share names with those of other folders)."""
