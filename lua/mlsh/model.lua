-- temporary alias while requires move to mlsh.model.coreml (removed in the next commit)
return require "mlsh.model.coreml"
