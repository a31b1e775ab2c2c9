print("tslm")
