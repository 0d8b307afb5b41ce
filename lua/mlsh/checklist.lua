-- temporary alias while requires move to mlsh.engine.checklist (removed in the next commit)
return require "mlsh.engine.checklist"
