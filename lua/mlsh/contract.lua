-- temporary alias while requires move to mlsh.engine.contract (removed in the next commit)
return require "mlsh.engine.contract"
