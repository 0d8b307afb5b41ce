-- temporary alias while requires move to mlsh.model.weights (removed in the next commit)
return require "mlsh.model.weights"
