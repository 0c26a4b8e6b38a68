"""After the panic: name each crash a dump holds, for a person (``panicwatch triage``) and
for the vmcores collector (labels on each waiting dump, parsed once per dump)."""
