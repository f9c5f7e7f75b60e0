-- A module that fails when required.
error("broken module")
