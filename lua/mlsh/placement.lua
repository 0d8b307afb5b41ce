-- temporary alias while requires move to mlsh.placement.coreml (removed in the next commit)
return require "mlsh.placement.coreml"
