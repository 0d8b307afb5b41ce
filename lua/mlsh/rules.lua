-- temporary alias while requires move to mlsh.engine.rules (removed in the next commit)
return require "mlsh.engine.rules"
