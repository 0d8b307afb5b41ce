-- temporary alias while requires move to mlsh.model.compiled (removed in the next commit)
return require "mlsh.model.compiled"
