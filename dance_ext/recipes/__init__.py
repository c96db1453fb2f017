"""The recipes behind `dance-ext reproduce`, `dance-ext cross-arch` and `dance-ext figures`:
whole experiments that write a folder of results, tables and figures."""
