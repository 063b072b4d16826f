"""The workflow engine: definitions as data (workflows/*.yaml), the rules they may name, and
the one gateway, `hotline.workflow.engine.fire()`."""
