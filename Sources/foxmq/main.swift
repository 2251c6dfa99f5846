print("foxmq")
